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
    m = ev.get("extra", {}).get("model")
    if m and m.get("run", True):
        lines.append(f"  model {m['model']} ({m.get('pretrained') or 'untrained'}): {m['change_ha']:.2f} ha changed "
                     f"(spectral {m['spectral_change_ha']:.2f} ha, IoU {m['iou'] if m['iou'] is not None else '-'}), "
                     f"scene label {m['scene_label']} ({100 * m['scene_scores'].get(m['scene_label'], 0):.0f}%)")
    elif m:
        lines.append(f"  model {m['model']} not run: {m.get('reason')}")
    for note in outputs.evidence.quality.notes:
        lines.append(f"  note: {note.text}")
    return lines

