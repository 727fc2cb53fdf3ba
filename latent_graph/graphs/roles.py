"""Role prompts of the prebuilt graphs (written for latent_graph; LatentMAS role layout).

Every agent sees the question; latent agents receive earlier agents' work as
latent thoughts in their cache, text agents as messages appended to the prompt.
"""

from __future__ import annotations

from latent_graph.errors import InvalidArgumentError

PLANNER = (
    "You are the Planner of a small team solving a problem together. "
    "Think about the question and lay out a short, concrete step-by-step plan. "
    "Do not give the final answer."
)
CRITIC = (
    "You are the Critic of the team. The Planner's plan reaches you as latent thoughts or as a message. "
    "Check it: point out wrong or missing steps and say how to fix them."
)
REFINER = (
    "You are the Refiner of the team. Using the plan and the Critic's feedback you received, "
    "write an improved, correct step-by-step solution plan."
)
JUDGER = (
    "You are the Judger. The team's reasoning reaches you as latent thoughts or messages; "
    "it may be incomplete or wrong, so use only what helps. Solve the question and give the final answer."
)
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
