"""Stage 4, evidence: one typed object per analysis (``schema``), built chunk by chunk from the
class rasters (``build``), with per-class extras such as burn severity areas and flood peaks
(``extras``). What the language stage, the dashboard and the reports may state.
"""

from rsvlm_temporal.evidence.build import build_evidence
from rsvlm_temporal.evidence.schema import (
    SCHEMA_VERSION,
    AOIInfo,
    ClassEvidence,
    ClearObservation,
    DataQuality,
    Evidence,
    QualityNote,
)

__all__ = ["SCHEMA_VERSION", "AOIInfo", "ClassEvidence", "ClearObservation", "DataQuality", "Evidence",
           "QualityNote", "build_evidence"]
