"""Text and HTML of a :class:`~execctx_nb._events._groups.StreamStatus` (``%execctx groups``,
the StreamMonitor widget): one table per group, then the newest dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from execctx_nb.display._html import CSS, badge, esc, fmt_ms

if TYPE_CHECKING:
    from execctx_nb._events._groups import DeadLetter, GroupState, StreamStatus

__all__ = ["dead_letter_row", "status_html", "status_text"]


def _lag(g: GroupState) -> str:
    return "?" if g.lag is None else f"{g.lag:,}"


def _oldest(g: GroupState) -> str:
    if g.oldest_pending is None:
        return "-"
    return (
        f"{g.oldest_pending} (idle {fmt_ms(g.oldest_pending_idle_ms)},"
        f" {g.oldest_pending_deliveries} deliveries)"
    )


def status_text(s: StreamStatus) -> str:
    """Plain text, for a terminal or a log."""
    lines = [f"{s.stream}: {s.length:,} entries, {len(s.groups)} groups, {s.dead_letters:,} dead"]
    for g in s.groups:
        lines.append(
            f"  group {g.name}: {g.pending:,} pending, lag {_lag(g)}, oldest pending {_oldest(g)}"
        )
        lines += [
            f"    {c.name}: {c.pending:,} pending, idle {fmt_ms(c.idle_ms)}" for c in g.consumers
        ]
    for d in s.newest_dead_letters:
        bad = f" [cannot be replayed: {d.problem}]" if d.problem else ""
        lines.append(f"  dead letter {d.id} (of {d.original_id}, {d.kind or '?'}): {d.error}{bad}")
    return "\n".join(lines)


def dead_letter_row(d: DeadLetter, action: str = "") -> str:
    """One dead letter as a table row; ``action`` is extra HTML for the last cell."""
    problem = f"<div class='bad'>cannot be replayed: {esc(d.problem)}</div>" if d.problem else ""
    return (
        f"<tr data-dead='{esc(d.id)}'><td><code>{esc(d.id)}</code></td>"
        f"<td><code>{esc(d.original_id)}</code></td><td>{esc(d.kind or '?')}</td>"
        f"<td>{esc(d.group)} / {esc(d.consumer)}</td><td class='num'>{d.deliveries or '?'}</td>"
        f"<td class='wrap'>{esc(d.error)}{problem}</td><td>{action}</td></tr>"
    )


def status_html(s: StreamStatus, *, consumer_action: str = "", dead_action: str = "") -> str:
    """HTML; the ``*_action`` strings are button markup templates with ``{group}``,
    ``{consumer}`` and ``{id}`` placeholders (the widget's actions; none by default)."""
    head = (
        f"<div><b>{esc(s.stream)}</b> · {s.length:,} entries · {len(s.groups)} groups · "
        + badge(f"{s.dead_letters:,} dead letters", "b-failed" if s.dead_letters else None)
        + "</div>"
    )
    parts = [head]
    for g in s.groups:
        rows = "".join(
            f"<tr data-consumer='{esc(c.name)}'><td>{esc(c.name)}</td>"
            f"<td class='num'>{c.pending:,}</td><td class='num'>{esc(fmt_ms(c.idle_ms))}</td>"
            f"<td>{consumer_action.format(group=esc(g.name), consumer=esc(c.name))}</td></tr>"
            for c in g.consumers
        )
        parts.append(
            f"<div class='group' data-group='{esc(g.name)}'><b>group {esc(g.name)}</b>:"
            f" {g.pending:,} pending · lag {_lag(g)} · oldest pending {esc(_oldest(g))}"
            "<table><thead><tr><th>consumer</th><th>pending</th><th>idle</th><th></th></tr>"
            f"</thead><tbody>{rows}</tbody></table></div>"
        )
    if s.newest_dead_letters:
        rows = "".join(
            dead_letter_row(d, dead_action.format(id=esc(d.id)) if not d.problem else "")
            for d in s.newest_dead_letters
        )
        parts.append(
            "<div class='dead'><b>newest dead letters</b><table><thead><tr><th>id</th>"
            "<th>original</th><th>kind</th><th>group / consumer</th><th>deliveries</th>"
            f"<th>reason</th><th></th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    return f"{CSS}<div class='execctx execctx-groups'>{''.join(parts)}</div>"
