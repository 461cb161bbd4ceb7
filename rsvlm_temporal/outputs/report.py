"""Human-readable summaries of a run (the CLI prints them)."""

from __future__ import annotations

from rsvlm_temporal.outputs.results import RunOutputs


def summary_lines(outputs: RunOutputs) -> list[str]:
    """A short human-readable summary of a run (for the CLI)."""
    ev = outputs.evidence.to_dict()
    lines = [f"analysis: {outputs.mode}; outputs in {outputs.out_dir}"]
    for c in ev.get("classes", []):
        if c.get("area_ha", 0) <= 0 or c.get("name") == "no_change":
            continue
        lines.append(
            f"  {c['name']:<16} {c['area_ha']:>10.2f} ha ({c['percent_of_valid']:.2f}% of valid area), "
            f"{c['n_patches']} patch(es), {c.get('location', '')}, "
            f"{c.get('first_date') or ''}..{c.get('last_date') or ''}"
        )
    for note in outputs.evidence.quality.notes:
        lines.append(f"  note: {note.text}")
    return lines

