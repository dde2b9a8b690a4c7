"""Stage 2's settings (the schema: video_caption/settings.py), and the names and defaults they take."""

from __future__ import annotations

from video_caption.settings import SWITCH, Setting, choice, integer, names, number, path

ABOUT = """Stage 2: score stage 1's clips and keep those passing every gate (the metadata gates first, then
the scorers in SCORERS order, each on the survivors of the gates before it).
  OUTPUT_FOLDER=/data/curated bash stage_2_filter_data.sh [flags]
Reads meta_clips.jsonl; writes <scorer> rows (aesthetic_score.jsonl ...), train.jsonl (the clips that
passed every gate) and gate_decisions.jsonl (every clip's fate).  Rerunning resumes: clips already scored
with the same settings are not scored again."""
SCORERS = ("aesthetic", "text", "motion", "camera_motion", "nsfw", "dedup")
# Open-Sora's camera-motion labels, then the ones for clips whose pairs disagree.
CAMERA_LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out")
CAMERA_MIXED = ("pan_tilt", "dynamic", "unknown")
TEXT_ENGINES = ("auto", "int8", "onnx", "torch")
# NudeNet's classes, in the order of its outputs (nudenet/nudenet.py's label list).
NSFW_LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
EXPLICIT = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
            "ANUS_EXPOSED")
# Default gate: keep clips whose nsfw_score <= this.  NudeNet reports nothing under 0.25, so any
# value below that rejects every explicit detection.  On benign footage the explicit classes do
# fire, on skin, rocks and bare cartoon bodies: over every 3rd frame of the shared test videos (1848
# frames) 14 explicit detections exceed 0.4 (a rounded rock 0.42, a hand close-up 0.40) and 7
# exceed 0.5, all of them Big Buck Bunny's bare cartoon rabbit (up to 0.76); the clips stage 1 cuts
# from those videos score at most 0.42.  Real nudity scores 0.54-0.68 in NudeNet's issue reports for
# this model (notAI-tech/NudeNet#117), and 0.5 is what its author calls "a decent threshold".  0.5
# keeps the misreads of ordinary footage and rejects a clip when one frame shows an explicit class
# with the confidence the detector gives real detections.
NSFW_MAX = 0.5
PHASH_MIN = 0.82  # every moment; bench/dedup_quality.py: copies and negatives split anywhere in 0.78-0.86
CLIP_MIN = 0.8  # a veto on hash look-alikes of different pictures, low enough that a letterbox passes


def _two(env: str, kind, default=None, help: str = "", group: str = "", **more) -> Setting:
    return Setting(env, kind, default, help, (2,), group, **more)


GATES = "gates (a gate with no value is off)"
SETTINGS = [
    _two("SCORERS", names(SCORERS, allow_none=True), list(SCORERS), group="scorers",
         help="the scorers, run in this order, each on the survivors of the gates before it (dedup always last; "
              "none: the metadata gates alone)"),
    _two("MIN_DURATION", number(), group=GATES, gate="metadata",
         help="metadata gate: keep clips at least this long, seconds"),
    _two("MAX_DURATION", number(), group=GATES, gate="metadata",
         help="metadata gate: keep clips at most this long, seconds"),
    _two("MIN_CLIP_SIDE", integer(), group=GATES, gate="metadata",
         help="metadata gate: keep clips at least this wide and high, pixels"),
    _two("MIN_FPS", number(), group=GATES, gate="metadata",
         help="metadata gate: keep clips of at least this frame rate"),
    _two("AESTHETIC_MIN", number(minimum=None), 4.0, group=GATES, gate="aesthetic",
         help="keep aesthetic_score >= this"),
    _two("TEXT_MAX", number(minimum=None), 0.02, group=GATES, gate="text",
         help="keep text_score (text boxes' share of the frame) <= this"),
    _two("TEXT_MAX_BOXES", integer(), group=GATES, gate="text",
         help="keep clips with at most this many text boxes in a frame (num_boxes, mindone's gate)"),
    _two("TEXT_MAX_SINGLE", number(minimum=None), group=GATES, gate="text",
         help="keep clips whose largest text box covers at most this share of the frame, 0-1 "
              "(max_single_percentage, mindone's gate)"),
    _two("MOTION_MIN", number(minimum=None), 3.0, group=GATES, gate="motion", help="keep motion_score > this"),
    _two("MOTION_MAX", number(minimum=None), 8.0, group=GATES, gate="motion", help="keep motion_score < this"),
    _two("CAMERA_MOTION", names(CAMERA_LABELS + CAMERA_MIXED), group=GATES, gate="camera_motion",
         help="keep only clips with these camera-motion labels"),
    _two("NSFW_MAX", number(minimum=None), NSFW_MAX, group=GATES, gate="nsfw",
         help="keep nsfw_score <= this (NudeNet reports nothing under 0.25; ordinary footage reaches 0.42)"),
    _two("KEEP_DUPLICATES", SWITCH, False, group=GATES, gate="dedup",
         help="dedup only marks duplicates (duplicates.jsonl) instead of dropping them"),
    _two("AESTHETIC_HEAD", path(what="a weights file"), group="aesthetic",
         default_text="from MODELS_FOLDER, else the packaged LAION head", help="the aesthetic head's weights file"),
    _two("MODELS_FOLDER", path(what="a folder"), group="aesthetic", default_text="$VIDEO_CAPTION_MODELS",
         help="folder holding aesthetic/<head file>"),
    _two("TEXT_FRAMES", integer(minimum=1), 1, group="text",
         help="frames per clip: the middle one, or the centres of equal parts"),
    _two("TEXT_MAX_SIDE", integer(minimum=1), 2560, group="text",
         help="longest side the CRAFT detector sees (EasyOCR's canvas_size; smaller is faster)"),
    _two("TEXT_PRESCREEN_SIDE", integer(), 640, group="text",
         help="first look at large frames at this size: no text there means score 0 (0: off)"),
    _two("TEXT_ENGINE", choice(TEXT_ENGINES), "auto", group="text",
         help="auto: int8 on CPU, torch on CUDA; int8: onnxruntime quantized (1.7x faster than fp32 end to end, "
              "scores within 0.01 of EasyOCR's); onnx: fp32, EasyOCR's exact boxes; torch: EasyOCR's own network"),
    _two("MOTION_FAST", SWITCH, False, group="motion",
         help="flow on frames shrunk to a 480 px long side, magnitudes scaled back: approximate, faster"),
    _two("NSFW_CLASSES", names(NSFW_LABELS), list(EXPLICIT), group="nsfw", default_text="the exposed classes",
         help="NudeNet classes whose highest confidence is nsfw_score"),
    _two("NSFW_FRAMES", integer(minimum=1), 4, group="nsfw", help="frames per clip, spread uniformly"),
    _two("DEDUP_THRESHOLD", number(minimum=None), PHASH_MIN, group="dedup",
         help="perceptual-hash cosine, at every sampled moment, from which two clips show the same footage"),
    _two("DEDUP_CLIP_THRESHOLD", number(minimum=None), CLIP_MIN, group="dedup",
         help="when the aesthetic scorer ran, the CLIP cosine two copies must also reach"),
    _two("SCORE_BATCH_SIZE", integer(minimum=1), 8, group="execution", help="clips per model call"),
]
