"""rsvlm-temporal dashboard: the series player beside the change analysis, fully offline.

Run: ``streamlit run app/Home.py``. It opens on the embedded demo (synthetic Sentinel-2 +
Landsat scenes, generated once and cached); a STAC API or a local catalog can be searched
instead. Every computation is a library call (``rsvlm_temporal.viewer``, ``pipeline``,
``io``); this file only lays out the page and caches the results.
"""

from __future__ import annotations

import logging
import sys
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _state import (  # noqa: E402  (after the path tweak)
    SOURCES,
    Source,
    analysis_done,
    analysis_for,
    demo_root,
    demo_scenarios,
    frame_store,
    items_for,
    run_dir,
)

from rsvlm_temporal import viewer  # noqa: E402
from rsvlm_temporal.errors import AOIError, RsvlmError  # noqa: E402
from rsvlm_temporal.io.aoi import parse_aoi  # noqa: E402

logging.captureWarnings(True)  # library warnings a user cannot act on go to the log, not the page
warnings.simplefilter("default")
log = logging.getLogger("rsvlm.app")

st.set_page_config(page_title="rsvlm-temporal · what changed here, and when?",
                   layout="wide", initial_sidebar_state="expanded")

CSS = """
<style>
.block-container {padding-top: 2.6rem; padding-bottom: 1rem;}
[data-testid="stAppDeployButton"] {display: none;}
.rsvlm-chip {display:inline-block; padding:2px 10px; margin:2px 4px 2px 0; border-radius:12px;
             background:#f0f2f6; font-size:0.85rem;}
.rsvlm-swatch {display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:6px;
               vertical-align:-1px; border:1px solid rgba(0,0,0,0.25);}
.rsvlm-legend {font-size:0.86rem; line-height:1.7;}
</style>
"""
st.markdown(CSS, unsafe_allow_html=True)

DEFAULTS: dict[str, Any] = {
    "frame_pos": 0, "playing": False, "pixel_row": 0, "pixel_col": 0, "last_click": None,
    "speed": 4.0, "view": "true_colour", "min_clear": 0.5, "cloudy": "skip", "overlay": True,
    "opacity": 0.55, "run_requested": False, "as_they_happen": True,
}
for k, v in DEFAULTS.items():
    st.session_state.setdefault(k, v)


def legend_html(entries: list[viewer.LegendEntry]) -> str:
    """Legend lines as HTML (colour swatches from the shared class table)."""
    return "<div class='rsvlm-legend'>" + "".join(
        f"<span class='rsvlm-chip'><span class='rsvlm-swatch' style='background:{e.color}'></span>{e.label}</span>"
        for e in entries) + "</div>"


def show_png(img: np.ndarray, caption: str | None = None) -> None:
    """An image as PNG (never JPEG: masks keep their exact colours), enlarged to >= 504 px."""
    st.image(viewer.upscale_to(img, 504), caption=caption, output_format="PNG", width="stretch")


# ------------------------------------------------------------------------------------------
# sidebar: data source, AOI, period, sensors, cloud
# ------------------------------------------------------------------------------------------

def sidebar() -> Source | None:
    """The data source the user picked, or None after an in-page error."""
    sb = st.sidebar
    sb.markdown("## rsvlm-temporal")
    sb.caption("What changed here, and when? Landsat + Sentinel-2 series, offline.")
    kind = sb.radio("Data source", list(SOURCES), format_func=SOURCES.get, key="source_kind")
    if kind == "demo":
        try:
            names = demo_scenarios()
        except RsvlmError as exc:
            sb.error(f"the demo could not be prepared: {exc}")
            return None
        scen = sb.selectbox("Demo scene", names, key="demo_scene", format_func=lambda s: s.replace("_", " "))
        return Source("demo", str(demo_root() / scen / "catalog.json"))
    if kind == "local":
        path = sb.text_input("Local STAC catalog (catalog.json, collection or folder)", key="local_path")
        if not path.strip():
            sb.info("Type the path of a static STAC catalog on this machine.")
            return None
        return Source("local", path.strip())
    # STAC API
    api = sb.selectbox("STAC API", ["earth-search", "planetary-computer", "custom URL"], key="stac_api")
    url = sb.text_input("API URL", key="stac_url", placeholder="https://…/v1") if api == "custom URL" else api
    aoi_mode = sb.radio("AOI", ["bbox", "GeoJSON upload", "GeoJSON text"], horizontal=True, key="aoi_mode")
    try:
        if aoi_mode == "bbox":
            text = sb.text_input("bbox (west, south, east, north; degrees)", "14.20,45.90,14.30,46.00", key="bbox")
            aoi = viewer.check_aoi_size(parse_aoi(text))
        elif aoi_mode == "GeoJSON text":
            text = sb.text_area("GeoJSON polygon (paste)", key="aoi_text", height=120)
            aoi = viewer.validate_aoi_upload(text.encode("utf-8"), "the pasted GeoJSON")
        else:
            up = sb.file_uploader("GeoJSON polygon", type=["geojson", "json"], key="aoi_upload")
            if up is None:
                sb.info("Upload a GeoJSON Polygon / Feature / FeatureCollection.")
                return None
            aoi = viewer.validate_aoi_upload(up.getvalue(), up.name)
    except AOIError as exc:
        st.error(f"AOI: {exc}")
        return None
    c1, c2 = sb.columns(2)
    start = c1.date_input("From", date(2021, 1, 1), key="stac_start")
    end = c2.date_input("To", date(2023, 12, 31), key="stac_end")
    sensors = sb.multiselect("Sensors", ["sentinel-2-l2a", "landsat-c2-l2"], ["sentinel-2-l2a", "landsat-c2-l2"],
                             key="stac_sensors")
    cloud = sb.slider("Max cloud cover (%)", 0, 100, 40, key="stac_cloud")
    if not sensors:
        st.error("Pick at least one sensor.")
        return None
    if not str(url).strip():
        sb.info("Type the URL of a STAC API.")
        return None
    if not sb.button("Search", type="primary", key="stac_search"):
        if st.session_state.get("stac_query") is None:
            sb.info("Set the AOI, period and sensors, then Search.")
            return None
        return st.session_state["stac_query"]
    src = Source("stac", str(url).strip(), aoi.bbox, str(start), str(end), tuple(sensors), float(cloud))
    st.session_state["stac_query"] = src
    return src


# ------------------------------------------------------------------------------------------
# the player (a fragment: playing reruns only it)
# ------------------------------------------------------------------------------------------

def index_chart(store: viewer.FrameStore, index: str, current: int, row: int, col: int) -> go.Figure:
    """AOI median (interquartile band) and the picked pixel's series, marker at the current frame."""
    aoi = viewer.aoi_series(store, index)
    px = viewer.pixel_series(store, index, row, col)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=aoi.date, y=aoi.p75, line=dict(width=0), showlegend=False, hoverinfo="skip",
                             connectgaps=True))
    fig.add_trace(go.Scatter(x=aoi.date, y=aoi.p25, fill="tonexty", fillcolor="rgba(120,140,170,0.18)",
                             line=dict(width=0), name="AOI 25–75 %", hoverinfo="skip", connectgaps=True))
    fig.add_trace(go.Scatter(x=aoi.date, y=aoi["median"], name="AOI median", connectgaps=True,
                             line=dict(color="#5b6b82", width=2)))
    ok = px[px.clear]
    fig.add_trace(go.Scatter(x=ok.date, y=ok.value, name=f"pixel (row {row}, col {col})",
                             mode="lines+markers", marker=dict(size=4), line=dict(color="#b2182b", width=1.5)))
    when = store.infos[current].date
    fig.add_vline(x=when, line=dict(color="#222", width=1, dash="dot"))
    fig.update_layout(height=250, margin=dict(l=10, r=10, t=30, b=10), yaxis_title=index.upper(),
                      title=dict(text=f"{index.upper()} over time", font=dict(size=14)),
                      legend=dict(orientation="h", y=-0.25), template="plotly_white")
    return fig


def render_player(store: viewer.FrameStore, layers: viewer.ResultLayers | None) -> None:
    """Date slider, play/pause, speed, view, the frame with its date/sensor/clear share, the
    class overlay, the colour bar and the index chart with the picked pixel."""
    ss = st.session_state
    c = st.columns([1, 1, 1, 2, 2])
    if c[0].button("Pause" if ss.playing else "Play", key="play_toggle", width="stretch"):
        ss.playing = not ss.playing
        st.rerun()
    step = c[1].button("Step", key="step", width="stretch")
    back = c[2].button("Back", key="back", width="stretch")
    c[3].select_slider("Speed (frames/s)", [1.0, 2.0, 4.0, 8.0], key="speed")
    c[4].selectbox("View", list(viewer.VIEWS), format_func=lambda k: viewer.VIEWS[k].label, key="view")
    f1, f2, f3 = st.columns([2, 1, 2])
    f1.slider("Clear-sky filter (min clear share)", 0.0, 1.0, step=0.05, key="min_clear")
    f2.radio("Cloudy frames", ["skip", "dim"], horizontal=True, key="cloudy")
    if layers is not None:
        f3.slider("Change overlay opacity", 0.0, 1.0, step=0.05, key="opacity",
                  help="0 hides the overlay; colours from the shared class table")
        f3.checkbox("Only changes dated up to this frame", key="as_they_happen",
                    disabled=layers.change_date is None)
    frames = store.visible(ss.min_clear) if ss.cloudy == "skip" else list(range(len(store)))
    if not frames:
        st.warning(f"No frame has at least {ss.min_clear:.0%} clear sky: lower the clear-sky filter.")
        return
    n = len(frames)
    pos = int(np.clip(ss.frame_pos, 0, n - 1))
    if ss.playing or step:
        pos = (pos + 1) % n
    elif back:
        pos = (pos - 1) % n
    ss.frame_pos = pos
    if n > 1:
        st.select_slider("Date", list(range(n)), key="frame_pos",
                         format_func=lambda k: store.infos[frames[k]].date,
                         help="Move to a date; the frames are rendered once and cached")
    i = frames[ss.frame_pos]
    info = store.infos[i]
    img = store.frame(i, ss.view)
    if layers is not None and ss.opacity > 0:
        until = info.date if ss.as_they_happen else None
        img = viewer.blend(img, viewer.class_rgba(layers.classes, layers.table, dates=layers.change_date,
                                                  until=until), ss.opacity)
    cloudy = info.clear_fraction < ss.min_clear
    if cloudy:
        img = (img * 0.45 + 255 * 0.55).astype(np.uint8)
    m = st.columns(4)
    m[0].markdown(f"**{info.date}**")
    m[1].markdown(f"{info.sensor_label}")
    m[2].markdown(f"{info.clear_fraction:.0%} clear" + (" · *dimmed*" if cloudy else ""))
    m[3].markdown(f"frame {ss.frame_pos + 1} / {n}")
    big = viewer.upscale_to(img, 504)
    h, w = store.shape
    click = ss.get("frame_click")  # the last click, read before drawing so the marker is current
    if click and click != ss.last_click:
        ss.last_click = click
        ss.pixel_row = int(np.clip(click["y"] * h / max(1, click.get("height") or big.shape[0]), 0, h - 1))
        ss.pixel_col = int(np.clip(click["x"] * w / max(1, click.get("width") or big.shape[1]), 0, w - 1))
    if ss.playing:
        st.image(big, output_format="PNG", width="stretch")
    else:
        from streamlit_image_coordinates import streamlit_image_coordinates

        marked = viewer.mark_pixel(big, int(ss.pixel_row), int(ss.pixel_col), store.shape)
        streamlit_image_coordinates(marked, key="frame_click", width="stretch")
        st.caption("Click the frame to pick a pixel (or type its row and column below).")
    bar = store.colorbar(ss.view)
    if bar is not None:
        st.image(bar, output_format="PNG")
    if layers is not None and ss.opacity > 0:
        st.markdown(legend_html(viewer.legend(layers.table, np.unique(layers.classes), hide=("no_change",))),
                    unsafe_allow_html=True)
    p = st.columns([1, 1, 2])
    p[0].number_input("Pixel row", 0, h - 1, step=1, key="pixel_row")
    p[1].number_input("Pixel column", 0, w - 1, step=1, key="pixel_col")
    v = viewer.VIEWS[ss.view]
    index = v.index if v.kind == "index" else p[2].selectbox("Chart index", list(viewer.INDEX_BANDS),
                                                             key="chart_index")
    st.plotly_chart(index_chart(store, str(index), i, int(ss.pixel_row), int(ss.pixel_col)), key="series_chart",
                    config={"displaylogo": False})
    series = viewer.pixel_series(store, str(index), int(ss.pixel_row), int(ss.pixel_col))
    ss["pixel_series_summary"] = {"row": int(ss.pixel_row), "col": int(ss.pixel_col), "index": str(index),
                                  "n_clear": int(series.clear.sum()),
                                  "mean": float(series.value.mean()) if series.clear.any() else None}


# ------------------------------------------------------------------------------------------
# beside the player: change map, swipe, severity, dates, areas, quality, questions, downloads
# ------------------------------------------------------------------------------------------

def render_results(store: viewer.FrameStore, outputs: Any, layers: viewer.ResultLayers) -> None:
    """The analysis results in tabs beside the player."""
    ev = outputs.evidence
    st.session_state["_last_out_dir"] = str(outputs.out_dir)
    cap = viewer.caption(ev)
    st.markdown("#### What changed")
    top = sorted((c for c in ev.classes if c.name != "no_change" and c.area_ha > 0), key=lambda c: -c.area_ha)[:3]
    if top:
        labels = {e.name: e.label for e in viewer.legend(layers.table)}
        for col, c in zip(st.columns(len(top)), top):
            col.metric(labels.get(c.name, c.name), f"{c.area_ha:,.1f} ha", f"{c.percent_of_valid:.1f} % of the AOI",
                       delta_color="off", delta_arrow="off")
    st.info(cap.text if cap.source == "language" else " · ".join(cap.evidence))
    if cap.source != "language":
        st.caption("Evidence summary (the language stage is not installed).")
    tabs = st.tabs(["Change map", "Before / after", "Burn severity", "Change date", "Areas", "Data quality",
                    "Ask", "Downloads", "Model"])
    with tabs[0]:
        show_png(viewer.classes_image(layers.classes, layers.table))
        st.markdown(legend_html(viewer.legend(layers.table, np.unique(layers.classes))), unsafe_allow_html=True)
    with tabs[1]:
        clear = store.visible(0.9) or list(range(len(store)))
        labels = {i: store.infos[i].caption() for i in clear}
        period = ev.extra.get("period") or [None, None]
        before_default = next((i for i in clear if period[0] and store.infos[i].date >= str(period[0])[:10]), clear[0])
        a, b = st.columns(2)
        bi = a.selectbox("Before", clear, index=clear.index(before_default), format_func=labels.get, key="swipe_before")
        ai = b.selectbox("After", clear, index=len(clear) - 1, format_func=labels.get, key="swipe_after")
        pos = st.slider("Swipe", 0.0, 1.0, 0.5, 0.01, key="swipe_pos")
        view = st.session_state.view
        show_png(viewer.swipe(store.frame(bi, view), store.frame(ai, view), pos),
                 caption=f"left: {store.infos[bi].date} · right: {store.infos[ai].date}")
    with tabs[2]:
        if layers.burn_severity is None:
            st.info("No burn severity for a bitemporal analysis.")
        else:
            show_png(viewer.classes_image(layers.burn_severity, "burn_severity"))
            st.markdown(legend_html(viewer.legend("burn_severity", np.unique(layers.burn_severity))),
                        unsafe_allow_html=True)
    with tabs[3]:
        if layers.change_date is None:
            st.info("No change dates for a bitemporal analysis.")
        else:
            rgb, bar = viewer.date_map(layers.change_date)
            show_png(rgb)
            st.image(bar, output_format="PNG")
    rows = viewer.area_table(ev, layers.table)
    with tabs[4]:
        st.dataframe([{"class": r["label"], "area (ha)": r["area_ha"], "% of valid area": r["percent"]}
                      for r in rows], hide_index=True, width="stretch", key="area_table")
        st.caption(f"Valid area {ev.aoi.valid_area_ha:,.1f} ha at {ev.aoi.pixel_size_m[0]:g} m pixels ({ev.aoi.crs}).")
    with tabs[5]:
        notes = ev.quality.notes
        if not notes:
            st.success("No data-quality note: every period had clear observations.")
        for note in notes:
            st.warning(f"**{note.kind.replace('_', ' ')}** — {note.text}")
        clear_obs = ev.quality.clear_observations
        if clear_obs:
            fig = go.Figure(go.Bar(x=[o.date for o in clear_obs], y=[o.clear_fraction * 100 for o in clear_obs],
                                   marker_color="#7b8ba3"))
            fig.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10), yaxis_title="% clear",
                              title=dict(text="Clear observations per date", font=dict(size=14)),
                              template="plotly_white")
            st.plotly_chart(fig, key="clear_chart", config={"displaylogo": False})
    with tabs[6]:
        q = st.text_input("Ask a question about this change", key="question",
                          placeholder="How much burned, and when?")
        if q.strip():
            ans = viewer.ask(q, ev)
            st.markdown(f"**Answer** ({ans.source}): {ans.text}")
            with st.expander("Evidence", expanded=True):
                for line in ans.evidence:
                    st.markdown(f"- {line}")
    with tabs[7]:
        downloads(store, outputs, layers, rows, cap)
    with tabs[8]:
        render_model(outputs)


def render_model(outputs: Any) -> None:
    """The temporal CLIP beside the spectral engine: agreement map, zero-shot labels, scene scores."""
    sec = outputs.evidence.extra.get("model")
    model_layers = viewer.read_model_layers(outputs.files)
    if not sec or not sec.get("run", True) or model_layers is None:
        st.info(f"The model did not run for this analysis{': ' + sec['reason'] if sec and sec.get('reason') else ''}.")
        return
    agreement, labels = model_layers
    c = st.columns(3)
    c[0].metric("Learned change", f"{sec['change_ha']:,.1f} ha", delta_color="off")
    c[1].metric("Spectral change", f"{sec['spectral_change_ha']:,.1f} ha", delta_color="off")
    c[2].metric("IoU of the two", "-" if sec["iou"] is None else f"{sec['iou']:.2f}", delta_color="off")
    a, b = st.columns(2)
    with a:
        show_png(viewer.classes_image(agreement, "model_agreement"), caption="Agreement")
        st.markdown(legend_html(viewer.legend("model_agreement", np.unique(agreement))), unsafe_allow_html=True)
    with b:
        show_png(viewer.classes_image(labels, "change"), caption="Zero-shot labels (text prompts)")
        st.markdown(legend_html(viewer.legend("change", np.unique(labels))), unsafe_allow_html=True)
    st.dataframe([{"class": k, "scene score": round(v, 3)} for k, v in
                  sorted(sec["scene_scores"].items(), key=lambda kv: -kv[1])], hide_index=True, key="model_scores")
    st.caption(f"{sec['model']} ({sec.get('pretrained')}): scene label {sec['scene_label']}; "
               f"{sec['agreement_ha']['spectral_only']:g} ha spectral only, {sec['agreement_ha']['model_only']:g} ha model only.")
    query = st.text_input("Search the series", key="model_query", placeholder="burned forest, when did it look flooded?")
    if query.strip():
        img, line = viewer.search_image(outputs.out_dir, query)
        show_png(img, caption="Matching score")
        st.markdown(f"**Search:** {line}")


def downloads(store: viewer.FrameStore, outputs: Any, layers: viewer.ResultLayers,
              rows: list[dict[str, object]], cap: viewer.ViewerAnswer) -> None:
    """COG masks, GeoJSON, area CSV, GIF / MP4 of the series, the report PNG."""
    files = outputs.files
    c = st.columns(2)
    for k, (name, mime) in enumerate([("change_class", "image/tiff"), ("change_mask", "image/tiff"),
                                      ("burn_severity", "image/tiff"), ("change_date", "image/tiff"),
                                      ("polygons", "application/geo+json")]):
        if name in files:
            path = Path(files[name])
            c[k % 2].download_button(f"{path.name}", path.read_bytes(), path.name, mime, key=f"dl_{name}",
                                     width="stretch")
    c[1].download_button("areas.csv", viewer.area_csv(rows), "areas.csv", "text/csv", key="dl_csv",
                         width="stretch")
    st.divider()
    ss = st.session_state
    out = Path(outputs.out_dir)
    a = st.columns(3)
    fps = float(ss.speed)

    def decorate(img: np.ndarray) -> np.ndarray:
        return viewer.blend(img, viewer.class_rgba(layers.classes, layers.table), ss.opacity) if ss.opacity else img

    for col, fmt in zip(a[:2], ("gif", "mp4")):
        target = out / f"series_{ss.view}.{fmt}"
        if col.button(f"Make {fmt.upper()}", key=f"make_{fmt}", width="stretch"):
            with st.spinner(f"Rendering {fmt.upper()}…"):
                try:
                    viewer.export_animation(store, target, ss.view, fps=fps, min_clear=ss.min_clear,
                                            decorate=decorate)
                except RsvlmError as exc:
                    st.error(str(exc))
        if target.is_file():
            col.download_button(f"{target.name}", target.read_bytes(), target.name,
                                "image/gif" if fmt == "gif" else "video/mp4", key=f"dl_{fmt}", width="stretch")
    report = out / "report.png"
    if a[2].button("Build report", key="make_report", width="stretch"):
        ev = outputs.evidence
        clear = store.visible(0.9) or list(range(len(store)))
        before, after = clear[0], clear[-1]
        maps = [(f"Before · {store.infos[before].date}", store.frame(before)),
                (f"After · {store.infos[after].date}", store.frame(after)),
                ("Change classes", viewer.classes_image(layers.classes, layers.table))]
        if layers.burn_severity is not None:
            maps.append(("Burn severity (dNBR)", viewer.classes_image(layers.burn_severity, "burn_severity")))
        if layers.change_date is not None:
            maps.append(("Date of change", viewer.date_map(layers.change_date)[0]))
        viewer.report_png(report, title=ss.get("scene_title", "Change report"),
                          subtitle=f"{ev.aoi.crs} · bounds (lon/lat) {', '.join(f'{v:.4f}' for v in ev.aoi.bounds_lonlat)}"
                                   f" · period {' – '.join(str(p) for p in ev.extra.get('period', []))}",
                          maps=maps, legend=viewer.legend(layers.table), areas=rows,
                          caption=cap.text if cap.source == "language" else "; ".join(cap.evidence),
                          notes=[n.text for n in ev.quality.notes])
    if report.is_file():
        a[2].download_button("report.png", report.read_bytes(), "report.png", "image/png", key="dl_report",
                             width="stretch")


# ------------------------------------------------------------------------------------------
# page
# ------------------------------------------------------------------------------------------

def main() -> None:
    """The page: source -> items -> frames (player) -> analysis (results beside it)."""
    src = sidebar()
    st.markdown("### What changed here, and when?")
    if src is None:
        st.stop()
    try:
        items, title = items_for(src)
    except RsvlmError as exc:
        st.error(f"{type(exc).__name__}: {exc}")
        st.stop()
    st.session_state["scene_title"] = title
    st.caption(f"{title} · {len(items)} acquisitions")
    try:
        bar = st.progress(0.0, text="Rendering frames…")
        store = frame_store(src, items, lambda done, total: bar.progress(done / total,
                                                                          text=f"Rendering frames… {done}/{total}"))
        bar.empty()
    except RsvlmError as exc:
        st.error(f"{type(exc).__name__}: {exc}")
        st.stop()
    sb = st.sidebar
    sb.divider()
    custom = sb.checkbox("Custom analysis period", key="custom_period")
    start = end = None
    if custom:
        c1, c2 = sb.columns(2)
        start = str(c1.date_input("Start", date.fromisoformat(store.infos[0].date[:10]), key="period_start"))
        end = str(c2.date_input("End", date.fromisoformat(store.infos[-1].date[:10]), key="period_end"))
    if sb.button("Run analysis", type="primary", key="run_analysis"):
        st.session_state.run_requested = True
    auto = src.kind == "demo"
    ss = st.session_state
    if ss.get("_store_key") != src.key:  # a new source: open on its first clear frame
        ss["_store_key"] = src.key
        ss["_store_key_path"] = src.where
        clear = store.visible(ss.min_clear) if ss.cloudy == "skip" else list(range(len(store)))
        best = [k for k, i in enumerate(clear) if store.infos[i].clear_fraction >= 0.95]
        wanted = str(st.query_params.get("date", ""))[:10]  # deep link: ?date=2022-08-01
        if wanted:
            best = [k for k in best if store.infos[clear[k]].date >= wanted] or best
        ss.frame_pos = best[0] if best else 0
    left, right = st.columns([3, 2], gap="large")
    outputs = layers = None
    want = auto or ss.run_requested
    if want:
        outputs = analysis_done(src, items, start, end)
        layers = viewer.read_layers(outputs.files) if outputs is not None else None
        if layers is not None and ss.get("_pixel_for") != src.key:  # open the series on the main change
            ss["_pixel_for"] = src.key
            px = viewer.representative_pixel(layers.classes, store.shape, layers.table)
            if px is not None:
                ss.pixel_row, ss.pixel_col = px
    with left:
        playing = bool(ss.playing)
        interval = 1.0 / float(ss.speed)

        @st.fragment(run_every=interval if playing else None)
        def player() -> None:
            render_player(store, layers)

        player()
    with right:
        if not want:
            st.info("Press **Run analysis** in the sidebar for change classes, severity, dates and areas.")
        elif outputs is None:
            try:
                outputs, _ = analysis_for(src, items, start, end, run_dir(src, start, end))
            except RsvlmError as exc:
                st.error(f"analysis failed — {type(exc).__name__}: {exc}")
                return
            st.rerun()  # the player picks up the overlay
        else:
            render_results(store, outputs, layers)


main()
