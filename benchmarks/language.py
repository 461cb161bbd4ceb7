"""Language stage benchmark: question answering against the generator truth, intent accuracy on a
separately written paraphrase set, verifier catches, caption scores, grounding IoU, the
prompt -> scene -> answer round trip and LM tokens/s.

``python benchmarks/language.py [--part qa intent area verifier captions grounding roundtrip lm
caption_paths perplexity latency]
[--pipeline-dir /tmp/lang-demo]``. ``--pipeline-dir``: outputs of ``rsvlm demo --out DIR``
(evidence.json, change_class.tif, change_polygons.geojson per scenario) graded against the demo
truth; without it the QA and grounding run on the truth-derived (oracle) evidence only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[1] / "tests" / "language" / "data"
AREA_TOL = 0.05


def demo_scene(name: str) -> Any:
    """The demo scene ``name`` in memory (DEMO_OPTIONS)."""
    from rsvlm_temporal.synth import DEMO_OPTIONS, make_scene

    return make_scene(name, **DEMO_OPTIONS)


def truth_facts(scene: Any) -> dict[str, Any]:
    """What a right answer must match: class areas (ha), percent, key dates, location, revisit."""
    from rsvlm_temporal.synth.prompt import revisit_days

    t = scene.truth
    ev = t.events
    key = ev.get("key_dates") or []
    return {"class_area_ha": t.stats.get("class_area_ha", {}), "pct": t.stats["changed_pct"],
            "first": key[0] if key else None, "last": key[-1] if key else None,
            "peak": ev.get("flood_peak_date"), "recession": ev.get("flood_recession_date"),
            "location": t.stats["location"], "revisit": revisit_days(scene)}


def grade(item: dict[str, Any], res: Any, truth: dict[str, Any]) -> bool:
    """True when the answer ``res`` (AskResult) matches the truth for ``item['check']``."""
    from rsvlm_temporal.synth.prompt import days_between

    f, chk = res.facts, item["check"]
    if chk == "refusal":
        return bool(res.refusal)
    if res.refusal:
        return False
    cls = item.get("class")
    if chk == "yesno":
        return f.get("yes") is item["expected"]
    if chk == "no_change":
        return f.get("changed") is False or f.get("area_ha") == 0.0 or f.get("yes") is False
    if cls and f.get("class") not in (None, cls):
        return False
    if chk == "class":
        return f.get("class") == cls
    if chk == "area":
        want = truth["class_area_ha"].get(cls, 0.0)
        return f.get("class") == cls and abs(f.get("area_ha", -1) - want) <= AREA_TOL * want
    if chk == "percent":
        return f.get("class") == cls and abs(f.get("percent", -1) - truth["pct"]) <= AREA_TOL * truth["pct"]
    if chk == "rate":
        yrs = days_between(truth["first"], truth["last"]) / 365.25
        want = truth["class_area_ha"][cls] / yrs
        return abs(f.get("rate_ha_per_year", -1) - want) <= AREA_TOL * want
    if chk.startswith("date"):
        which = {"date": "first", "date_last": "last", "date_peak": "peak", "date_recession": "recession"}[chk]
        want = truth[which]
        return bool(f.get("date")) and days_between(f["date"], want) <= truth["revisit"]
    if chk == "location":
        return f.get("location") == truth["location"] or (f.get("location_phrase", "").startswith("scattered")
                                                          and truth["location"] == "centre")
    raise ValueError(f"unknown check {chk!r}")


def part_qa(pipeline_dir: str | None) -> dict[str, Any]:
    from rsvlm_temporal.evidence.schema import Evidence
    from rsvlm_temporal.language.ask import ask
    from rsvlm_temporal.synth.prompt import truth_evidence

    items = json.loads((DATA / "question_set.json").read_text())["items"]
    scenes = {n: demo_scene(n) for n in sorted({i["scenario"] for i in items})}
    truths = {n: truth_facts(s) for n, s in scenes.items()}
    sources = {"truth_evidence": {n: truth_evidence(s) for n, s in scenes.items()}}
    if pipeline_dir:
        sources["pipeline_evidence"] = {n: Evidence.from_json((Path(pipeline_dir) / n / "evidence.json").read_text())
                                        for n in scenes if (Path(pipeline_dir) / n / "evidence.json").is_file()}
    out: dict[str, Any] = {"n_questions": len(items), "n_unique_phrasings": len({i["question"] for i in items})}
    for src, evs in sources.items():
        ok, verified, fails, by_check = 0, 0, [], {}
        t0 = time.perf_counter()
        for it in items:
            res = ask(it["question"], evs[it["scenario"]])
            good = grade(it, res, truths[it["scenario"]])
            ok += good
            verified += res.verified
            b = by_check.setdefault(it["check"], [0, 0])
            b[0] += good
            b[1] += 1
            if not good:
                fails.append({"scenario": it["scenario"], "q": it["question"], "a": res.answer, "intent": res.intent})
        out[src] = {"accuracy": round(ok / len(items), 4), "verified_rate": round(verified / len(items), 4),
                    "by_check": {k: f"{a}/{n}" for k, (a, n) in sorted(by_check.items())},
                    "seconds_per_question": round((time.perf_counter() - t0) / len(items), 4), "failures": fails}
    return out


AREA_CLASSES = (("wildfire", "burn"), ("flood", "flood"), ("deforestation", "vegetation_loss"),
                ("urban_growth", "built_up_gain"))


def part_area(pipeline_dir: str | None) -> dict[str, Any]:
    """Each scenario's class map (``change_class.tif`` of ``rsvlm demo``, on the analysis grid)
    against the generator truth (10 m): truth area, mapped area, the area a perfect majority vote
    on the analysis grid would map (a pixel is the class when > 50% of its 10 m cells are), the
    boundary (mixed) pixels, and how often pixels are mapped per truth fraction. Areas in ha."""
    import rasterio

    from rsvlm_temporal.classes import CHANGE_CODES
    from rsvlm_temporal.synth.scenarios import PIXEL_HA

    if not pipeline_dir:
        return {"skipped": "needs --pipeline-dir (outputs of rsvlm demo)"}
    rows = []
    for name, cls in AREA_CLASSES:
        f = Path(pipeline_dir) / name / "change_class.tif"
        if not f.is_file():
            continue
        code = CHANGE_CODES[cls]
        truth = demo_scene(name).truth.change_class == code
        with rasterio.open(f) as src:
            m = src.read(1)
            res = abs(src.transform.a)
        k = truth.shape[0] // m.shape[0]
        frac = truth.reshape(m.shape[0], k, m.shape[1], k).mean(axis=(1, 3))  # truth share per pixel
        mapped, pix = m == code, res * res / 1e4
        t_ha = float(truth.sum() * PIXEL_HA)
        bins = {"0": frac == 0, "(0,1/2)": (frac > 0) & (frac < 0.5), "[1/2,1)": (frac >= 0.5) & (frac < 1),
                "1": frac == 1}
        rows.append({
            "scenario": name, "class": cls, "grid_m": res, "truth_ha": round(t_ha, 2),
            "mapped_ha": round(float(mapped.sum() * pix), 2),
            "mapped_error_pct": round(100 * (mapped.sum() * pix / t_ha - 1), 1),
            "majority_ha": round(float((frac > 0.5).sum() * pix), 2),
            "majority_error_pct": round(100 * ((frac > 0.5).sum() * pix / t_ha - 1), 1),
            "mixed_pixels": int(((frac > 0) & (frac < 1)).sum()), "pure_pixels": int((frac == 1).sum()),
            "commission_ha": round(float(((1 - frac) * mapped).sum() * pix), 2),
            "omission_ha": round(float((frac * ~mapped).sum() * pix), 2),
            "mapped_by_truth_fraction": {b: f"{int((s & mapped).sum())}/{int(s.sum())}" for b, s in bins.items()},
        })
    return {"rows": rows, "within_5pct": sum(abs(r["mapped_error_pct"]) <= 100 * AREA_TOL for r in rows)}


INTENT_SETS = {"paraphrases_final": "held-out (scored once, nothing tuned on it)",
               "paraphrases": "development (the rules were revised on it)",
               "paraphrases_heldout": "development (looked at during the last revision)"}


def part_intent() -> dict[str, Any]:
    from rsvlm_temporal.language.understand import parse_question

    dates = ["2018-01-02", "2024-12-30"]
    out: dict[str, Any] = {}
    for name, role in INTENT_SETS.items():
        items = json.loads((DATA / f"{name}.json").read_text())["items"]
        wrong = []
        for q, want in items:
            got = parse_question(q, dates).intent
            if got != want:
                wrong.append({"q": q, "want": want, "got": got})
        out[name] = {"role": role, "n": len(items), "intent_accuracy": round(1 - len(wrong) / len(items), 4),
                     "errors": wrong}
    return out


def perturbations(ev: Any) -> list[tuple[str, str, bool]]:
    """(kind, text, should_pass) pairs built from one evidence with a burn (wildfire truth)."""
    from rsvlm_temporal.language.compose import caption

    c = next(c for c in ev.classes if c.name == "burn")
    good = caption(ev).text
    wrong_cell = next(k for k in ("north-west", "north-east", "south-west", "south-east", "north", "south")
                      if c.cell_shares.get(k, 0.0) == 0.0)
    return [
        ("correct caption", good, True),
        ("correct area", f"About {c.area_ha:.1f} ha burned.", True),
        ("correct date", f"The fire was detected on {c.first_date}.", True),
        ("correct place", f"The burn scar lies in the {c.location}.", True),
        ("wrong area", f"About {c.area_ha * 1.4:.1f} ha burned.", False),
        ("wrong percent", f"{c.percent_of_valid + 9:.1f}% of the area burned.", False),
        ("wrong date", "The fire was detected on 2019-03-02.", False),
        ("wrong year", "A wildfire burned the forest in 2017.", False),
        ("wrong direction", "The forest gained cover after the fire; vegetation increased.", False),
        ("invented class", "A landslide buried the valley.", False),
        ("absent class", "The river flooded the fields.", False),
        ("wrong place", f"The burn scar lies in the {wrong_cell}.", False),
        ("no-change claim", "No change: no vegetation loss, no built-up loss.", False),
        ("correct no-change place", f"No change was detected in the {wrong_cell} of the AOI.", True),
    ]


def part_verifier() -> dict[str, Any]:
    from rsvlm_temporal.language.verify import verify
    from rsvlm_temporal.synth.prompt import truth_evidence

    ev = truth_evidence(demo_scene("wildfire"))
    rows = []
    for kind, text, should in perturbations(ev):
        v = verify(text, ev)
        rows.append({"kind": kind, "ok": v.ok == should, "unsupported": v.unsupported})
    return {"n": len(rows), "correct": sum(r["ok"] for r in rows), "rows": rows}


def part_captions(seeds: int = 3) -> dict[str, Any]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    from rsvlm_temporal.language.compose import caption
    from rsvlm_temporal.synth import DEMO_OPTIONS, SCENARIO_NAMES, make_scene
    from rsvlm_temporal.synth.prompt import truth_evidence

    def tok(s: str) -> str:
        import re

        return " ".join(re.findall(r"[a-z0-9]+(?:[.-][a-z0-9]+)*", s.lower()))

    refs, hyps = {}, {}
    for name in SCENARIO_NAMES:
        for seed in range(seeds):
            sc = make_scene(name, **{**DEMO_OPTIONS, "seed": seed})
            key = f"{name}-{seed}"
            refs[key] = [tok(c) for c in sc.truth.captions]
            hyps[key] = [tok(caption(truth_evidence(sc)).text)]
    b, _ = Bleu(4).compute_score(refs, hyps)
    cider, _ = Cider().compute_score(refs, hyps)
    rouge, _ = Rouge().compute_score(refs, hyps)
    return {"path": "template on truth evidence", "n": len(hyps), "BLEU-4": round(b[3], 4),
            "CIDEr": round(cider, 4), "ROUGE-L": round(rouge, 4)}


def part_grounding(pipeline_dir: str | None) -> dict[str, Any]:
    import numpy as np

    from rsvlm_temporal.evidence.schema import Evidence
    from rsvlm_temporal.language.compose import phrase
    from rsvlm_temporal.language.ground import cell_masks, ground

    if not pipeline_dir:
        return {"skipped": "needs --pipeline-dir (outputs of rsvlm demo)"}
    rows = []
    for name, cls in (("wildfire", "burn"), ("flood", "flood"), ("deforestation", "vegetation_loss"),
                      ("urban_growth", "built_up_gain")):
        d = Path(pipeline_dir) / name
        if not (d / "evidence.json").is_file():
            continue
        ev = Evidence.from_json((d / "evidence.json").read_text())
        sc = demo_scene(name)
        truth = sc.truth.change_class == {"burn": 1, "flood": 2, "vegetation_loss": 3, "built_up_gain": 5}[cls]
        loc = sc.truth.stats["location"]
        for where in ([loc] if loc != "centre" else []) + [None]:
            text = f"the {phrase(cls)}" + (f" in the {where}" if where else "")
            g = ground(text, ev, class_raster=d / "change_class.tif", polygons=d / "change_polygons.geojson")
            k = truth.shape[0] // g.mask.shape[0]
            m = np.kron(g.mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
            t = truth.copy()
            if where:
                cm = cell_masks(t.shape)
                inside = np.zeros(t.shape, bool)
                for cell in g.cells:
                    inside |= cm[cell]
                t &= inside
            iou = float((m & t).sum() / max((m | t).sum(), 1))
            rows.append({"scenario": name, "phrase": text, "iou": round(iou, 4),
                         "features": len(g.geojson["features"])})
    ious = [r["iou"] for r in rows]
    return {"rows": rows, "mean_iou": round(float(np.mean(ious)), 4) if ious else None}


PROMPTS = [
    "a wildfire in the south-east in summer 2021, then regrowth", "a wildfire in the north-west in summer 2020",
    "forest fire in the north-east during summer 2022", "a wildfire in the south-west in summer 2019",
    "a fire in the north in summer 2021 seen by Sentinel-2", "a blaze in the south in summer 2023",
    "a wildfire in the east in summer 2020, then recovery", "bushfire in the west in summer 2022",
    "a wildfire in the northeast in August 2021", "wildfire in the southwest in July 2020",
    "a river flood in spring 2020", "a flood in spring 2021 seen by Landsat", "flooding in April 2022",
    "a flood in spring 2019, then recession", "river flood in May 2023",
    "deforestation in 2021", "clear-cuts in 2020 seen by Sentinel-2", "logging in 2022",
    "forest clearing in 2019 with Landsat", "deforestation in 2023",
    "urban growth in the north-west in 2021", "urban growth in the south-east corner in 2020",
    "new buildings in the north-east in 2022", "urban sprawl in the south-west in 2019",
    "construction in the south-east in 2023", "new district in the north-west in 2022",
    "a wildfire in the south-east in summer 2020", "a wildfire in the north in summer 2022",
    "a flood in spring 2022 seen by Sentinel-2", "urban growth in the north-east in 2020",
]


def part_roundtrip() -> dict[str, Any]:
    from rsvlm_temporal.language.ask import ask
    from rsvlm_temporal.synth.prompt import scene_from_prompt, truth_evidence

    cls_of = {"wildfire": "burn", "flood": "flood", "deforestation": "vegetation_loss", "urban_growth": "built_up_gain"}
    rows = []
    t0 = time.perf_counter()
    for p in PROMPTS:
        scene, spec = scene_from_prompt(p)
        ev = truth_evidence(scene)
        cls = cls_of[spec["scenario"]]
        noun = {"burn": "fire", "flood": "flood", "vegetation_loss": "deforestation", "built_up_gain": "construction"}[cls]
        what = ask("What changed here?", ev)
        when = ask(f"When did the {noun} happen?", ev)
        where = ask(f"Where is the {noun}?", ev)
        win = spec["event_window"]
        ok_what = what.facts.get("class") == cls
        ok_when = not win or (bool(when.facts.get("date")) and win["start"] <= when.facts["date"] <= win["end"])
        ok_where = not spec["place"] or where.facts.get("location") == spec["place"]
        rows.append({"prompt": p, "seed": spec["seed"], "matched": spec["matched"],
                     "ok": bool(ok_what and ok_when and ok_where), "what": ok_what, "when": ok_when,
                     "where": ok_where})
    return {"n": len(rows), "round_trip_accuracy": round(sum(r["ok"] for r in rows) / len(rows), 4),
            "seconds": round(time.perf_counter() - t0, 1), "failures": [r for r in rows if not r["ok"]]}


def part_lm(model: str | None) -> dict[str, Any]:
    import torch

    from rsvlm_temporal.language.ask import ask
    from rsvlm_temporal.language.head import LMHead
    from rsvlm_temporal.synth.prompt import truth_evidence

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    head = LMHead(model)
    load_s = time.perf_counter() - t0
    ev = truth_evidence(demo_scene("wildfire"))
    g = head.generate("What changed here?", ev, max_new_tokens=48)
    res = [ask(q, ev, head=head, use_lm=True) for q in ("What changed here since 2020?", "How much area burned?")]
    return {"model": model or "SmolLM2-135M-Instruct Q4_1 GGUF (dequantised, float32)", "load_s": round(load_s, 1),
            "tokens": g.tokens, "tokens_per_s": round(g.tokens_per_s, 2), "sample": g.text,
            "lm_answers": [{"answer": r.answer, "source": r.source, "verified": r.verified,
                            "rejected": r.unsupported} for r in res]}


def _scene_visuals(seeds: list[int], cache: Path | None = None) -> list[dict[str, Any]]:
    """Synthetic scenes (train.data options: 36 px, one year) with their truth evidence, truth
    captions and the temporal CLIP's scene change embedding (the visual prefix input)."""
    import dask
    import numpy as np

    from rsvlm_temporal.model.inference import run_model
    from rsvlm_temporal.synth import SCENARIO_NAMES, make_scene
    from rsvlm_temporal.synth.prompt import truth_evidence
    from rsvlm_temporal.train.data import SCENE_KW, scene_cube

    stored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    out = []
    with dask.config.set(scheduler="synchronous"):
        for seed in seeds:
            for name in SCENARIO_NAMES:
                sc = make_scene(name, seed=seed, sensors="both", **SCENE_KW)
                key = f"{name}-{seed}"
                if key not in stored:
                    stored[key] = np.asarray(run_model(scene_cube(sc)).embedding, float).round(6).tolist()
                out.append({"key": key, "ev": truth_evidence(sc), "captions": list(sc.truth.captions),
                            "visual": stored[key]})
    if cache:
        cache.write_text(json.dumps(stored))
    return out


def _tok(s: str) -> str:
    import re

    return " ".join(re.findall(r"[a-z0-9]+(?:[.-][a-z0-9]+)*", s.lower()))


def _caption_scores(refs: dict[str, list[str]], hyps: dict[str, list[str]]) -> dict[str, float]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    b, _ = Bleu(4).compute_score(refs, hyps)
    return {"BLEU-4": round(b[3], 4), "CIDEr": round(Cider().compute_score(refs, hyps)[0], 4),
            "ROUGE-L": round(Rouge().compute_score(refs, hyps)[0], 4)}


CAPTION_Q = "Describe the change in this area."


def part_caption_paths(train_seeds: int = 2, heldout_seeds: tuple[int, ...] = (100,), prefix_steps: int = 40,
                       cache: str | None = "/tmp/rsvlm-bench-visuals.json") -> dict[str, Any]:
    """Caption scores (BLEU-4, CIDEr, ROUGE-L vs the truth captions) on held-out synthetic scenes
    for the template, the LM (shipped adapter) without the visual prefix, and the LM with a
    prefix projection trained here on the scenes of ``range(train_seeds)`` (LM frozen)."""
    import torch

    from rsvlm_temporal.language.compose import caption
    from rsvlm_temporal.language.head import ADAPTER_DIR, LMHead, evidence_text, fit_prefix, perplexity
    from rsvlm_temporal.language.verify import verify

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    c = Path(cache) if cache else None
    train = _scene_visuals(list(range(train_seeds)), c)
    test = _scene_visuals(list(heldout_seeds), c)
    embed_s = time.perf_counter() - t0
    adapter = ADAPTER_DIR if (ADAPTER_DIR / "adapter_config.json").is_file() else None
    head = LMHead(adapter=adapter)
    pairs = [{"question": CAPTION_Q, "evidence": evidence_text(s["ev"]), "answer": cap, "v": s["visual"]}
             for s in train for cap in s["captions"][:2]]
    t1 = time.perf_counter()
    losses = fit_prefix(head, pairs, [p["v"] for p in pairs], steps=prefix_steps)
    fit_s = time.perf_counter() - t1
    refs = {s["key"]: [_tok(x) for x in s["captions"]] for s in test}
    hyps: dict[str, dict[str, list[str]]] = {"template": {}, "lm_no_visual": {}, "lm_visual": {}}
    verified = {"lm_no_visual": 0, "lm_visual": 0}
    samples, toks, secs = {}, 0, 0.0
    for s in test:
        hyps["template"][s["key"]] = [_tok(caption(s["ev"]).text)]
        for path, vis in (("lm_no_visual", None), ("lm_visual", s["visual"])):
            g = head.generate(CAPTION_Q, s["ev"], visual=vis, max_new_tokens=48)
            toks, secs = toks + g.tokens, secs + g.seconds
            hyps[path][s["key"]] = [_tok(g.text) or "empty"]
            verified[path] += verify(g.text, s["ev"]).ok
            samples.setdefault(s["key"], {})[path] = g.text
    held_pairs = [{"question": CAPTION_Q, "evidence": evidence_text(s["ev"]), "answer": cap} for s in test
                  for cap in s["captions"]]
    ppl_no = perplexity(head, held_pairs)
    ppl_vis = perplexity(head, held_pairs, visuals=[s["visual"] for s in test for _ in s["captions"]])
    return {"n_heldout": len(test), "n_train_scenes": len(train), "prefix_train_pairs": len(pairs),
            "prefix_steps": prefix_steps, "prefix_loss_first5": round(sum(losses[:5]) / 5, 4),
            "prefix_loss_last5": round(sum(losses[-5:]) / 5, 4), "embed_s": round(embed_s, 1),
            "prefix_fit_s": round(fit_s, 1), "lm_tokens_per_s": round(toks / max(secs, 1e-9), 2),
            "scores": {k: _caption_scores(refs, v) for k, v in hyps.items()},
            "verified_rate": {k: round(v / len(test), 3) for k, v in verified.items()},
            "heldout_caption_ppl": {"lm_no_visual": round(ppl_no, 3), "lm_visual": round(ppl_vis, 3)},
            "samples": samples}


def part_perplexity(n_train: int = 120, n_test: int = 60, steps: int = 12, shipped: bool = False) -> dict[str, Any]:
    """The LM's perplexity on a fixed sample of LEVIR-CC test captions (answer tokens) before
    and after ``rsvlm finetune`` on ``n_train`` LEVIR-CC train captions (``steps`` LoRA steps)."""
    import random
    import tempfile

    import torch

    from rsvlm_temporal.language.head import ADAPTER_DIR, LMHead, load_causal_lm, perplexity
    from rsvlm_temporal.train.language import LEVIR_DIR, finetune, levir_pairs, write_pairs

    torch.set_num_threads(1)
    f = LEVIR_DIR / "levir-mci_captions_consolidated.json"
    if not f.is_file():
        return {"skipped": f"no {f}"}
    images = [im for im in json.loads(f.read_text())["images"] if im.get("split") == "test"]
    rng = random.Random(0)
    rng.shuffle(images)
    q = "Describe the building change between the two images."
    test = []
    for im in images[:n_test]:
        s = im["sentences"][0]
        none = any(k in s for k in ("no difference", "no change", "identical", "the same", "unchanged"))
        ev = "no change detected" if none else "built_up_gain: present (building change, area not measured)"
        test.append({"question": q, "evidence": ev, "answer": s[0].upper() + s[1:] + "."})
    out: dict[str, Any] = {"n_test_captions": len(test), "test_sample": "LEVIR-MCI test split, shuffled seed 0, "
                           "first sentence of each of the first pairs"}
    lm, tok = load_causal_lm()
    out["ppl_base"] = round(perplexity(LMHead(lm=lm, tokenizer=tok), test), 3)
    if shipped and (ADAPTER_DIR / "adapter_config.json").is_file():
        out["ppl_shipped_adapter"] = round(perplexity(LMHead(adapter=ADAPTER_DIR), test), 3)
    with tempfile.TemporaryDirectory() as d:
        cap = write_pairs(Path(d) / "levir_train.jsonl", levir_pairs(n_train, seed=1))
        t0 = time.perf_counter()
        rep = finetune(cap, out_dir=Path(d) / "adapter", steps=steps, rank=8, lr=1e-3, lm=lm, tokenizer=tok,
                       threads=1)
        out["finetune"] = {k: rep[k] for k in ("pairs", "steps", "rank", "lr", "batch", "loss_first5",
                                                "loss_last5", "train_seconds")}
        out["finetune_wall_s"] = round(time.perf_counter() - t0, 1)
        out["command"] = f"rsvlm finetune --captions levir_train.jsonl --steps {steps} --rank 8 --lr 0.001"
        head = LMHead(adapter=Path(d) / "adapter")
        out["ppl_after_finetune"] = round(perplexity(head, test), 3)
    return out


def part_latency(question: str = "What changed here since 2020?", scenario: str = "wildfire") -> dict[str, Any]:
    """Wall time of ``rsvlm ask QUESTION --demo SCENARIO --json``: the first answer (runs the
    analysis into a fresh folder), then the cached one (the evidence reused), and with ``--lm``."""
    import subprocess
    import tempfile

    exe = str(Path(sys.executable).parent / "rsvlm")
    out: dict[str, Any] = {"question": question, "scenario": scenario}
    with tempfile.TemporaryDirectory() as d:
        base = [exe, "ask", question, "--demo", scenario, "--out", d, "--json"]
        for label, cmd in (("first_s", base), ("cached_s", base), ("cached_lm_s", base + ["--lm"])):
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            out[label] = round(time.perf_counter() - t0, 1)
            if r.returncode != 0:
                out[label + "_error"] = r.stderr[-500:]
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            out[label.replace("_s", "_answer")] = {"answer": res["answer"], "verified": res["verified"],
                                                   "source": res.get("source")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", nargs="+", default=["qa", "intent", "verifier", "captions", "grounding", "roundtrip"])
    ap.add_argument("--pipeline-dir", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=None, help="write the report as JSON")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {}
    for part in args.part:
        t0 = time.perf_counter()
        if part == "qa":
            report[part] = part_qa(args.pipeline_dir)
        elif part == "intent":
            report[part] = part_intent()
        elif part == "area":
            report[part] = part_area(args.pipeline_dir)
        elif part == "verifier":
            report[part] = part_verifier()
        elif part == "captions":
            report[part] = part_captions()
        elif part == "grounding":
            report[part] = part_grounding(args.pipeline_dir)
        elif part == "roundtrip":
            report[part] = part_roundtrip()
        elif part == "lm":
            report[part] = part_lm(args.model)
        elif part == "caption_paths":
            report[part] = part_caption_paths()
        elif part == "perplexity":
            report[part] = part_perplexity()
        elif part == "latency":
            report[part] = part_latency()
        else:
            raise SystemExit(f"unknown part {part!r}")
        report[part]["wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps({part: report[part]}, indent=1, default=str), flush=True)
    if args.out:
        from rsvlm_temporal.atomic import write_json_atomic

        write_json_atomic(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
