"""The agent's prompt templates (prompts/*.txt) and the text that fills them."""

from __future__ import annotations

import random
from string import Template

from lamdagent.agent.facts import facts, lessons_of, memory_text
from lamdagent.errors import UserError
from lamdagent.files import prompt_file
from lamdagent.journal import Entry, Journal
from lamdagent.space import ActionSpace, ModelObject

EMPTY_MEMORY = "(empty: this is the first iteration)"

MADE_LISTED = 12  # the objects prompt's list of what the chosen type already made: the latest (a small model's prompt stays short)


COMMON = ("head", "tasks", "evidence", "memory", "iteration", "iterations", "models", "directive")  # _common's keys
PLACEHOLDERS = {  # what the tool fills in each template (a user's own may use any of them)
    "head": ("tasks", "evidence"),
    "action_type": (*COMMON, "action_types"),
    "objects": (*COMMON, "action_type", "action_description", "slots", "made", "reply_format"),
    "proposal": (*COMMON, "proposals"),
    "hybrid": (*COMMON, "proposal", "action_types"),
    "memory": ("head", "tasks", "memory", "facts", "lessons", "iteration", "iterations", "action", "result", "best", "max_words"),
}


def template(name: str) -> Template:
    return Template(prompt_file(f"{name}.txt").read_text())


def check_templates() -> None:
    """Every template the search path resolves (a user's own prompts/ first) uses only placeholders the
    tool fills: a misspelt one is a one-line error before any compute, not a KeyError mid-exploration."""
    for name, known in PLACEHOLDERS.items():
        path, text = prompt_file(f"{name}.txt"), template(name)
        if not text.is_valid():
            raise UserError(f"prompt template {path}: a '$' that starts no ${{placeholder}} (write $$ for a dollar sign)")
        if unknown := sorted(set(text.get_identifiers()) - set(known)):
            raise UserError(f"prompt template {path}: unknown placeholder ${{{unknown[0]}}}; expected some of {', '.join(known)}")


def describe_model(model: ModelObject, journal: Journal | None = None) -> str:
    """One line of the models listing; a model made with no gain says so."""
    if model.score is None:
        return f"- {model.name} = {model.pipeline}: not evaluated"
    per_task = ", ".join(f"{task} {value:.2f}" for task, value in model.scores.items())
    cost = f"; made in {model.cost_seconds:.0f} s" if model.cost_seconds is not None else ""
    made = journal.no_gain().get(model.name) if journal is not None else None
    note = f" [NO GAIN: the same scores as its input {made.same_as.name}]" if made else ""
    return f"- {model.name} = {model.pipeline}: score {model.score:.3f} ({per_task}{cost}){note}"


def best_first(models: list[ModelObject]) -> list[ModelObject]:
    """The models by validation score, best first (unscored last, then in creation order): a small
    model reads a list top-down, and the one to build on should not hide in the middle of it."""
    return sorted(models, key=lambda m: (m.score is None, -(m.score or 0.0), m.iteration))


def directive(iteration: int, budget: int) -> str:
    """The exploration directive: explore early, exploit late (the paper's instruction)."""
    if iteration <= max(1, budget // 3):
        return "this is early in the search: prefer actions, datasets and models you have not tried yet."
    if iteration > budget - max(1, budget // 5):
        return "the budget is nearly spent: build on the best models found so far."
    return "balance trying new combinations with improving on the best models so far."


def head(journal: Journal) -> str:
    """The block every prompt of an exploration begins with (prompts/head.txt: the role, the goal, the data
    screening): the same text at the start of each request, so a server that reuses a prompt's prefix
    (llama.cpp's server, measured; vLLM's prefix caching) evaluates it once, not once per request."""
    return template("head").substitute(tasks=", ".join(journal.tasks), evidence=journal.evidence.table())


def _common(journal: Journal, iteration: int, space: ActionSpace) -> dict[str, str]:
    return {
        "head": head(journal),
        "tasks": ", ".join(journal.tasks),  # a user's own template may still place these itself
        "evidence": journal.evidence.table(),
        "memory": journal.memory().strip() or EMPTY_MEMORY,
        "iteration": str(iteration),
        "iterations": str(journal.budget),
        "models": "\n".join([describe_model(m, journal) for m in best_first(space.models)] + [
            f"- (running now, result not known yet; choose something different) {e.label} = {e.pipeline}" for e in journal.pending()]),
        "directive": directive(iteration, journal.budget),
    }


def action_type_prompt(journal: Journal, iteration: int, space: ActionSpace, type_names: list[str]) -> str:
    """The candidates are listed in an order shuffled per iteration (seeded): a listing order that
    never changes is a position bias the agent can fall into."""
    lines, tried = [], journal.tried_types()
    for name in random.Random(f"types/{iteration}").sample(type_names, len(type_names)):
        action_type = space.action_types[name]
        slots = ", ".join(s.name for s in action_type.slots)
        lines.append(f"- {name}({slots}): {action_type.description}{'' if name in tried else ' (not tried yet)'}")
    return template("action_type").substitute(_common(journal, iteration, space), action_types="\n".join(lines))


def objects_prompt(journal: Journal, iteration: int, space: ActionSpace, type_name: str) -> str:
    """Slots and their candidates, described compactly (never the cross product of bindings)."""
    action_type = space.action_types[type_name]
    candidates = space.candidates(type_name)
    chosen = space.choice_slots(type_name)
    lines, fixed = [], []
    for slot in action_type.slots:
        values = candidates[slot.name]
        if slot.name not in chosen:
            fixed.append(f"{slot.name} = {_value(values[0])}")
            continue
        if slot.kind == "model":
            listed = "any model listed above" + (" (two different models)" if sum(s.kind == "model" for s in action_type.slots) > 1 else "")
        elif slot.kind in ("dataset", "preference"):
            listed = "; ".join(d.describe() for d in values)
        else:
            listed = ", ".join(_value(v) for v in values)
        lines.append(f'- "{slot.name}" ({slot.description}): {listed}')
    if fixed:
        lines.append(f"(fixed by the study, not yours to choose: {', '.join(fixed)})")
    reply = "{" + ", ".join(f'"{s.name}": "<{s.kind}>"' for s in action_type.slots if s.name in chosen) + "}"
    made = [f"{m.name} = {m.pipeline}" for m in journal.seeds if m.pipeline.startswith(f"{type_name}(")]  # e.g. ft_all = sft(base, all)
    made += [f"{e.model.name} = {e.label}" if e.model else f"{e.label} (failed)" for e in journal.entries if e.action_type == type_name]
    return template("objects").substitute(
        _common(journal, iteration, space),
        action_type=type_name,
        action_description=action_type.description,
        slots="\n".join(lines),
        made=("Already made with this type (a repeat is not a valid choice): " + "; ".join(made[-MADE_LISTED:])
              + (f" (and {len(made) - MADE_LISTED} earlier)" if len(made) > MADE_LISTED else "")) if made else "",
        reply_format=reply,
    )


def proposals_prompt(journal: Journal, iteration: int, space: ActionSpace, proposals: list) -> str:
    """The guided policy's one step: numbered proposals, each with the scores of the models it uses."""
    lines = []
    for number, action in enumerate(proposals, 1):
        inputs = ", ".join(f"{m.name} {m.score:.3f}" if m.score is not None else m.name for m in action.models)
        lines.append(f"{number}. {action} (input scores: {inputs})")
    return template("proposal").substitute(_common(journal, iteration, space), proposals="\n".join(lines))


def hybrid_prompt(journal: Journal, iteration: int, space: ActionSpace, proposal, type_names: list[str]) -> str:
    """The hybrid policy's step: the search's proposal, to accept or to override with another type of action."""
    lines = [f"- {name}: {space.action_types[name].description}" for name in random.Random(f"types/{iteration}").sample(type_names, len(type_names))]
    inputs = ", ".join(f"{m.name} {m.score:.3f}" if m.score is not None else m.name for m in proposal.models)
    return template("hybrid").substitute(_common(journal, iteration, space), proposal=f"{proposal} = {proposal.pipeline()} (input scores: {inputs})",
                                         action_types="\n".join(lines))


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def action_text(entry: Entry) -> str:
    """The action of a decision and the pipeline it makes."""
    return f"{entry.label} = {entry.pipeline}"


def result_text(journal: Journal, entry: Entry) -> str:
    """What a finished action gave: its model's scores, or why it failed."""
    if entry.model is None:
        return f"FAILED ({entry.error})"
    model = entry.model
    per_task = ", ".join(f"{t} {v:.2f}" for t, v in model.scores.items())
    repeated = " (a repeat of an earlier action: its model was reused, nothing new was learned)" if journal.repeated(entry) else ""
    same = entry.same_as
    no_gain = (f" (NO GAIN: exactly the scores of its input {same.name}; this kind of action will not be offered on "
               f"{model.name} again)") if same is not None and not repeated else ""
    return f"{model.name} scored {model.score:.3f} ({per_task}){repeated}{no_gain}"


def best_text(journal: Journal) -> str:
    best = journal.best()
    return "none yet" if best is None else f"{best.name} = {best.pipeline} with score {best.score:.3f}"


def memory_prompt(journal: Journal, entry: Entry, max_words: int) -> str:
    """The rewrite of the agent's lessons after `entry`'s outcome: the tool's facts (kept whatever the
    reply) and the lessons before it."""
    lessons = lessons_of(journal.memory()) or EMPTY_MEMORY
    return template("memory").substitute(
        head=head(journal),
        tasks=", ".join(journal.tasks),
        memory=memory_text(journal, lessons),  # as the next decision's prompt will show it, but for the lessons
        facts=facts(journal),
        lessons=lessons,
        iteration=str(entry.iteration),
        iterations=str(journal.budget),
        action=action_text(entry),
        result=result_text(journal, entry),
        best=best_text(journal),
        max_words=str(max_words),
    )
