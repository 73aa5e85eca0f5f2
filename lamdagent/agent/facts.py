"""What the tool writes into the agent's memory from the journal: the best models, how far a score
moves by chance (and which models the validation set cannot tell from the best), whether the best
one's lineage stalled, what each recent action did to each target (against its best input), the
actions that changed nothing and the data the screening predicts to hurt. The LLM rewrites only its
lessons beside them, so a nonsense rewrite of a weak model never erases what the results showed."""

from __future__ import annotations

from lamdagent.journal import Entry, Journal
from lamdagent.space import lineage

FACTS = "Facts (written by the tool from the results):"
LESSONS = "Lessons (the agent's own notes):"
RECENT = 6  # actions whose per-task effects are listed (a small model's prompt must stay short)


def effect(entry: Entry) -> str:
    """One action's effect on each target against its best input, e.g. `facts +0.62, arith -0.04 (vs m1)`."""
    label = f"{entry.model.name if entry.model else 'm' + str(entry.iteration)} = {entry.pipeline}"
    if entry.model is None:
        return f"- {label}: FAILED ({entry.error[:120]})"
    if entry.same_as is not None:
        return f"- {label}: NO GAIN (exactly the scores of {entry.same_as.name})"
    scored = [m for m in entry.inputs if m.score is not None]
    if not scored or entry.model.score is None:
        return f"- {label}: score {entry.model.score}"
    best = max(scored, key=lambda m: m.score)
    changes = sorted(((t, v - best.scores.get(t, 0.0)) for t, v in entry.model.scores.items()), key=lambda c: -abs(c[1]))
    return f"- {label}: " + ", ".join(f"{t} {d:+.2f}" for t, d in changes) + f" (vs {best.name}); score {entry.model.score:.3f} ({entry.gain:+.3f})"


def facts(journal: Journal) -> str:
    """The facts block: best model, the best model per task, the recent actions' effects, harmful data."""
    lines = []
    best = journal.best()
    if best is not None:
        per_task = ", ".join(f"{t} {v:.2f}" for t, v in best.scores.items())
        lines.append(f"Best: {best.name} = {best.pipeline}, score {best.score:.3f} ({per_task}).")
    scored = [m for m in journal.models() if m.scores]
    if scored:
        tops = [(t, max(scored, key=lambda m, t=t: m.scores.get(t, 0.0))) for t in journal.tasks]
        lines.append("Best per task: " + ", ".join(f"{t} {m.name} {m.scores.get(t, 0.0):.2f}" for t, m in tops) + ".")
    if best is not None and (error := journal.noise.error(best)) > 0:
        tied = [m.name for m in sorted(scored, key=lambda m: -m.score) if m is not best and m.score <= best.score and journal.noise.tied(best, m)]
        lines.append(f"A validation score moves by about {error:.2f} by chance (one standard error)"
                     + (f"; the validation set cannot tell {best.name} from {', '.join(tied[:4])}." if tied else "."))
    if journal.stalled():
        scored_outside = sorted((m for m in lineage.outside(best, journal.models()) if m.score is not None), key=lambda m: -m.score)
        others = ", ".join(f"{m.name} {m.score:.3f}" for m in scored_outside[:3])
        lines.append(f"No decision beat {best.name} in the last {journal.since_best()} decisions: its line of descent has stalled"
                     + (f"; the best models outside it: {others}." if others else "."))
    recent = journal.finished()[-RECENT:]
    if recent:
        lines.append("What the latest actions did to each target:")
        lines += [effect(e) for e in recent]
    harmful = [d for d in journal.evidence.effects if journal.predicted_harmful(d)]
    if harmful:
        lines.append(f"The data screening predicts these datasets, which no action trained on yet, hurt every target: {', '.join(harmful)}.")
    return "\n".join(lines)


def memory_text(journal: Journal, lessons: str) -> str:
    """The stored memory: the tool's facts, then the agent's lessons."""
    return f"{FACTS}\n{facts(journal)}\n\n{LESSONS}\n{lessons.strip()}"


def lessons_of(memory: str) -> str:
    """The agent's lessons in a stored memory (all of it when it has no facts block: an older exploration)."""
    return memory.split(LESSONS, 1)[1].strip() if LESSONS in memory else memory.strip()
