"""Write (and execute with nbclient) the project's notebooks.

    python notebooks/build_notebooks.py          # write + execute both, store the outputs

01_quickstart runs offline on the small demo scene; 02_stac_walkthrough marks its network cells
with the tag ``network`` and skips them when no STAC API answers (they print why).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

QUICKSTART = [
    new_markdown_cell(
        "# rsvlm-temporal quickstart: what changed here, and when?\n\n"
        "End to end on the embedded **offline demo** (synthetic Sentinel-2 L2A + Landsat C2 L2 scenes with "
        "known truth, generated once and cached): items → lazy cube → change analysis → evidence → "
        "maps, series and exports. No network is needed."),
    new_code_cell(
        "import json\n"
        "from pathlib import Path\n\n"
        "import numpy as np\n"
        "from IPython.display import Image, display\n"
        "from PIL import Image as PILImage\n\n"
        "from rsvlm_temporal import viewer\n"
        "from rsvlm_temporal.io.catalog import load_items\n"
        "from rsvlm_temporal.io.cube import load_cube\n"
        "from rsvlm_temporal.pipeline import run_analysis, summary_lines\n"
        "from rsvlm_temporal.synth.writer import demo_catalog\n\n\n"
        "def show(img, width=360):\n"
        "    \"\"\"Display a uint8 RGB array as PNG.\"\"\"\n"
        "    import io\n"
        "    buf = io.BytesIO()\n"
        "    PILImage.fromarray(viewer.upscale_to(img, width)).save(buf, format='PNG')\n"
        "    display(Image(buf.getvalue(), width=width))"),
    new_markdown_cell("## 1. The demo catalog and its items\n`demo_catalog()` generates the small demo once "
                      "(seeded) and returns its root `catalog.json`; each scenario is a child catalog."),
    new_code_cell(
        "root = demo_catalog()  # the small preset; demo_catalog(preset='showcase') is the dashboard's\n"
        "items = load_items(root.parent / 'wildfire' / 'catalog.json')\n"
        "print(len(items), 'items;', sorted({it.collection_id for it in items}))\n"
        "print(items[0].id, items[0].datetime)"),
    new_markdown_cell("## 2. The lazy cube\n`(time, band, y, x)` surface reflectance 0–1, NaN where cloud, "
                      "shadow or nodata; Landsat and Sentinel-2 merged on one 30 m grid. Nothing is read yet."),
    new_code_cell(
        "cube = load_cube(items)\n"
        "print(dict(cube.sizes), cube.attrs['crs'], cube.attrs['resolution'], 'm')\n"
        "print('sensors:', sorted(set(cube.sensor.values.tolist())))\n"
        "cube"),
    new_markdown_cell("## 3. Change analysis\n`run_analysis` writes COG masks, GeoJSON polygons, a PNG "
                      "quicklook and `evidence.json`."),
    new_code_cell(
        "import tempfile\nout = Path(tempfile.mkdtemp(prefix='rsvlm-quickstart-'))  # or any folder of yours\n"
        "outputs = run_analysis(items, out)\n"
        "print('\\n'.join(summary_lines(outputs)))\n"
        "sorted(p.name for p in outputs.files.values())"),
    new_markdown_cell("## 4. The evidence\nOne typed object: per-class areas (ha, % of the valid area), "
                      "patches, where in the AOI, dates, confidence and data-quality notes."),
    new_code_cell(
        "ev = outputs.evidence\n"
        "for row in viewer.area_table(ev):\n"
        "    print(f\"{row['label']:<16} {row['area_ha']:>9.2f} ha  {row['percent']:>6.2f} %\")\n"
        "burn = ev.class_by_name('burn')\n"
        "print('burn:', burn.location_phrase, burn.first_date, '..', burn.last_date)\n"
        "print('notes:', [n.kind for n in ev.quality.notes])"),
    new_markdown_cell("## 4b. The temporal CLIP beside the spectral engine\nThe learned change mask, its "
                      "agreement with the spectral classes, the zero-shot scene label, and text search over "
                      "the run (from the stored embeddings: the model does not run again)."),
    new_code_cell(
        "m = ev.extra['model']\n"
        "print({k: m[k] for k in ('model', 'pretrained', 'change_ha', 'spectral_change_ha', 'iou', 'scene_label')})\n"
        "from rsvlm_temporal.outputs.model_search import search_run\n"
        "for query in ('scorched woodland', 'new buildings'):\n"
        "    r = search_run(outputs.out_dir, query)\n"
        "    print(f'{query!r}: {r.matched_ha} ha, {r.where}, dates {r.dates[:2]}')"),
    new_markdown_cell("## 5. Maps\nClass colours come from the shared class table (`config/classes.json`), "
                      "as in the PNG quicklooks and the dashboard legend."),
    new_code_cell(
        "layers = viewer.read_layers(outputs.files)\n"
        "show(viewer.classes_image(layers.classes))\n"
        "print(', '.join(f'{e.label} {e.color}' for e in viewer.legend('change')))\n"
        "show(viewer.classes_image(layers.burn_severity, 'burn_severity'))\n"
        "rgb, bar = viewer.date_map(layers.change_date)\n"
        "show(rgb); show(bar, 360)"),
    new_markdown_cell("## 6. Frames and series\nThe dashboard's frame store: every date rendered once "
                      "(true / false colour, indices), the clear share per date, and index series."),
    new_code_cell(
        "store = viewer.FrameStore(viewer.player_cube(items))\n"
        "clear = store.visible(0.95)\n"
        "before, after = clear[0], clear[-1]\n"
        "print(store.infos[before].caption(), '|', store.infos[after].caption())\n"
        "show(viewer.swipe(store.frame(before, 'false_colour'), store.frame(after, 'false_colour'), 0.5))"),
    new_code_cell(
        "import plotly.graph_objects as go\n"
        "import plotly.io as pio\n"
        "pio.renderers.default = 'plotly_mimetype'  # offline: no plotly.js from a CDN\n"
        "aoi = viewer.aoi_series(store, 'nbr')\n"
        "row, col = np.unravel_index(np.argmax(viewer.resize_nearest(layers.classes == 1, store.shape)), store.shape)\n"
        "px = viewer.pixel_series(store, 'nbr', int(row), int(col))\n"
        "fig = go.Figure([go.Scatter(x=aoi.date, y=aoi['median'], name='AOI median NBR', connectgaps=True),\n"
        "                 go.Scatter(x=px.date[px.clear], y=px.value[px.clear], name=f'burned pixel ({row}, {col})',\n"
        "                            mode='lines+markers')])\n"
        "fig.update_layout(height=320, template='plotly_white', yaxis_title='NBR')\n"
        "fig.show()\n"
        "print(px[px.clear].iloc[::40][['date', 'value', 'sensor']].to_string(index=False))"),
    new_markdown_cell("## 7. Exports: animation and report"),
    new_code_cell(
        "gif = viewer.export_animation(store, out / 'series.gif', 'true_colour', fps=6, min_clear=0.95)\n"
        "report = viewer.report_png(out / 'report.png', title='Wildfire (demo)', subtitle=ev.aoi.crs,\n"
        "                           maps=[('before', store.frame(before)), ('after', store.frame(after)),\n"
        "                                 ('change classes', viewer.classes_image(layers.classes))],\n"
        "                           legend=viewer.legend(), areas=viewer.area_table(ev),\n"
        "                           caption=viewer.caption(ev).text, notes=[n.text for n in ev.quality.notes])\n"
        "print(gif, gif.stat().st_size // 1024, 'KiB;', report)\n"
        "display(Image(filename=str(report), width=700))"),
    new_markdown_cell("Next: `streamlit run app/Home.py` plays the same series beside these results; "
                      "`02_stac_walkthrough.ipynb` searches a real STAC API."),
]

STAC = [
    new_markdown_cell(
        "# STAC walkthrough: real Sentinel-2 and Landsat items\n\n"
        "Cells tagged **network** query a public STAC API (Earth Search v1 or Planetary Computer). "
        "Offline they print why and skip; the offline cells use real item JSON recorded in "
        "`../shared/data/stac/` where present."),
    new_code_cell(
        "from pathlib import Path\n"
        "from rsvlm_temporal.errors import CatalogError, EmptySearchError\n"
        "from rsvlm_temporal.io.catalog import search\n"
        "from rsvlm_temporal.viewer import check_aoi_size\n"
        "from rsvlm_temporal.io.aoi import parse_aoi\n\n"
        "aoi = check_aoi_size(parse_aoi('14.20,45.90,14.30,46.00'))  # Ljubljana marshes, ~85 km2\n"
        "aoi.bbox"),
    new_markdown_cell("## A search (network)"),
    new_code_cell(
        "try:\n"
        "    items = search(aoi, '2023-06-01', '2023-09-30', collections=['s2', 'landsat'], max_cloud=40,\n"
        "                   source='earth-search', timeout=10, retries=0)\n"
        "    print(len(items), 'items'); print([it.id for it in items[:5]])\n"
        "except (CatalogError, EmptySearchError) as exc:\n"
        "    items = None\n"
        "    print('skipped (offline?):', exc)",
        metadata={"tags": ["network"]}),
    new_markdown_cell("## Recorded real items (offline)\nThe same code reads a recorded Earth Search "
                      "response: projection v1/v2, `raster:bands` scales and the Sentinel-2 baseline offset are "
                      "normalised by the loader."),
    new_code_cell(
        "from rsvlm_temporal.io.catalog import load_items\n"
        "from rsvlm_temporal.io.items import normalise_items\n"
        "rec = Path('../../shared/data/stac/earth-search-v1')\n"
        "if not rec.is_dir():\n"
        "    rec = Path('/work/shared/data/stac/earth-search-v1')\n"
        "files = sorted(rec.glob('search_*point*.json')) if rec.is_dir() else []\n"
        "if files:\n"
        "    recorded = load_items(files[0])\n"
        "    print(files[0].name, len(recorded), 'items')\n"
        "    for it in normalise_items(recorded[:4], ('red', 'nir'))[:4]:\n"
        "        print(it.id, it.sensor.id, it.epsg, it.cloud_cover)\n"
        "else:\n"
        "    print('recorded items not found (clone ../shared beside the repository)')"),
    new_markdown_cell("## Load and analyse (network)\nReading the remote COGs needs the network too."),
    new_code_cell(
        "if items:\n"
        "    from rsvlm_temporal.io.cube import load_cube\n"
        "    cube = load_cube(items, bounds_latlon=aoi.bbox, resolution=30)\n"
        "    print(dict(cube.sizes))\n"
        "else:\n"
        "    print('skipped: no items (offline)')",
        metadata={"tags": ["network"]}),
]


def write(name: str, cells: list, execute: bool = True, timeout: int = 600) -> Path:
    """Write notebook ``name`` and, with ``execute``, run it in place (outputs stored)."""
    from nbclient import NotebookClient

    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    path = HERE / name
    if execute:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    tmp = path.with_name(f".{path.name}.part")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    run = "--no-execute" not in sys.argv
    print(write("01_quickstart.ipynb", QUICKSTART, run))
    print(write("02_stac_walkthrough.ipynb", STAC, run))
