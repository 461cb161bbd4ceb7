"""The dashboard's library: frames of the series player, class overlays and the swipe, pixel
and AOI series, GIF / MP4 export, the one-page report, AOI upload checks, questions.

It sits with the outputs stage: it may import io, change, evidence, language, outputs and
classes, never synth, evaluate or the pipeline at module level. ``app/`` only calls it.
"""

from rsvlm_temporal.viewer.animation import captioned_frames, export_animation
from rsvlm_temporal.viewer.frames import (
    INDEX_BANDS,
    PLAYER_BANDS,
    VIEWS,
    FrameInfo,
    FrameStore,
    View,
    player_cube,
    player_resolution,
)
from rsvlm_temporal.viewer.layers import (
    ResultLayers,
    area_csv,
    area_table,
    read_layers,
    read_model_layers,
    representative_pixel,
    search_image,
)
from rsvlm_temporal.viewer.overlay import LegendEntry, blend, class_rgba, classes_image, date_map, legend, swipe
from rsvlm_temporal.viewer.qa import ViewerAnswer, ask, caption, evidence_summary, language_available
from rsvlm_temporal.viewer.render import (
    colorbar,
    draw_caption,
    hex_color,
    mark_pixel,
    ramp,
    resize_nearest,
    upscale_to,
)
from rsvlm_temporal.viewer.report import report_png
from rsvlm_temporal.viewer.runs import analyse_cached, load_run, request_digest
from rsvlm_temporal.viewer.series import aoi_series, pixel_series
from rsvlm_temporal.viewer.upload import (
    MAX_AOI_KM2,
    MAX_UPLOAD_BYTES,
    aoi_area_km2,
    check_aoi_size,
    validate_aoi_upload,
)

__all__ = [
    "INDEX_BANDS", "MAX_AOI_KM2", "MAX_UPLOAD_BYTES", "PLAYER_BANDS", "VIEWS", "FrameInfo", "FrameStore",
    "LegendEntry", "ResultLayers", "View", "ViewerAnswer", "aoi_area_km2", "aoi_series", "area_csv",
    "area_table", "ask", "blend", "caption", "captioned_frames", "check_aoi_size", "class_rgba",
    "classes_image", "colorbar", "date_map", "draw_caption", "evidence_summary", "export_animation",
    "hex_color", "language_available", "legend", "mark_pixel", "pixel_series", "player_cube", "player_resolution",
    "analyse_cached", "load_run", "request_digest", "ramp", "read_layers", "read_model_layers", "representative_pixel", "search_image", "report_png", "resize_nearest", "swipe", "upscale_to", "validate_aoi_upload",
]
