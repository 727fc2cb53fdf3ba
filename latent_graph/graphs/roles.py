"""Role prompts of the prebuilt graphs (written for latent_graph; LatentMAS role layout).

Every agent sees the question; latent agents receive earlier agents' work as
latent thoughts in their cache, text agents as messages appended to the prompt.
"""

from __future__ import annotations

from latent_graph.errors import InvalidArgumentError

# Short, plain instructions: small models echo long role prompts back instead of following them
# (measured on SmolLM2-135M: a judger prompt that talked about "latent thoughts" was echoed and
# relayed 0/6 probes; this plain one relayed 4-5/9, see docs/benchmarks.md).
PLANNER = "You are the Planner. Make a short step-by-step plan to solve the question. Do not give the final answer."
CRITIC = "You are the Critic. Check the plan so far and point out mistakes or missing steps."
REFINER = "You are the Refiner. Write an improved, correct plan using the feedback so far."
JUDGER = "You are the Judger. Use what the team found, then answer the question."
SINGLE = "Solve the question. Think step by step, then give the final answer."
EXPERTS = {
    "math_expert": "You are a mathematics expert. Work out the question with careful calculation.",
    "science_expert": "You are a science expert. Reason about the question using facts and first principles.",
    "code_expert": "You are a programming expert. Reason about the question as an algorithm, step by step.",
}
SEQUENTIAL = {"planner": PLANNER, "critic": CRITIC, "refiner": REFINER}

ANSWER_FORMATS = {
    "math": "End with the final number in the form \\boxed{ANSWER}.",
    "choice": "End with the letter of the correct option in the form \\boxed{LETTER}.",
    "code": "Answer with one complete Python code block.",
    "plain": "Answer briefly.",
}


def with_format(instruction: str, task: str) -> str:
    """Append the task's answer-format instruction."""
    if task not in ANSWER_FORMATS:
        raise InvalidArgumentError(f"unknown task {task!r}; choose one of {sorted(ANSWER_FORMATS)}")
    return f"{instruction} {ANSWER_FORMATS[task]}"
