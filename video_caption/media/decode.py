"""Frame decoding with PyAV (libav in-process), and which frames a sampler takes."""

from __future__ import annotations

import bisect
import functools
import os
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np

from video_caption.media.probe import VideoInfo
from video_caption.media.process import MediaError, check_not_empty, media_path


def _turn(plane: np.ndarray, rotation: int) -> np.ndarray:
    return plane if rotation == 0 else np.rot90(plane, k=-(rotation // 90))


def _plane(frame, index: int, width: int, height: int) -> np.ndarray:
    """A view (no copy) of one plane of a decoded frame, without its line padding."""
    plane = frame.planes[index]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width]


_local = threading.local()


def _reformatter():
    """This thread's swscale context holder: ``VideoFrame.to_ndarray(width=...)`` makes a new one
    per call, which is three quarters of the cost of scaling a small frame (same pixels)."""
    if not hasattr(_local, "reformatter"):
        from av.video.reformatter import VideoReformatter

        _local.reformatter = VideoReformatter()
    return _local.reformatter


class DecodedFrame:
    """One decoded frame: its 0-based decode index, its time in the source, and conversions."""

    __slots__ = ("index", "time", "_frame", "_rotation")

    def __init__(self, index: int, time: float, frame, rotation: int):
        self.index, self.time, self._frame, self._rotation = index, time, frame, rotation

    def _yuv_planes(self, width: int, height: int) -> list[np.ndarray]:
        turned = self._rotation in (90, 270)
        w, h = (height, width) if turned else (width, height)
        frame = self._frame
        if frame.format.name != "yuv420p" or frame.width < w or frame.height < h:
            frame = frame.reformat(width=w, height=h, format="yuv420p")
        planes = [_plane(frame, 0, w, h), _plane(frame, 1, w // 2, h // 2), _plane(frame, 2, w // 2, h // 2)]
        return [_turn(p, self._rotation) for p in planes]

    def without_picture(self) -> DecodedFrame:
        """This frame's index and time alone: what is kept of a frame whose pixels are no longer
        needed, so that the decoder can reuse its buffer at once."""
        return DecodedFrame(self.index, self.time, None, self._rotation)

    def size(self) -> tuple[int, int]:
        """(width, height) as displayed, after rotation."""
        w, h = self._frame.width, self._frame.height
        return (h, w) if self._rotation in (90, 270) else (w, h)

    def video_frame(self, width: int, height: int, copy: bool = False):
        """The frame upright as a yuv420p ``av.VideoFrame`` of the displayed size (both even), for an
        encoder, which owns it from then on (it sets the timestamp): the decoder's own frame when
        that is it already and not ``copy`` (no copy), else a new one."""
        import av

        frame = self._frame
        if not copy and self._rotation == 0 and frame.format.name == "yuv420p" and (
                frame.width, frame.height) == (width, height):
            return frame
        packed = np.concatenate([p.reshape(-1) for p in self._yuv_planes(width, height)])
        return av.VideoFrame.from_ndarray(packed.reshape(height * 3 // 2, width), format="yuv420p")

    def image(self, width: int, height: int, fmt: str = "bgr24", exact: bool = False) -> np.ndarray:
        """The frame upright, scaled to about width x height, as an HxWx3 array ("bgr24" or "rgb24").

        Exactly that size when ``exact``; otherwise, for a small target, the planes are thinned by
        an even step instead (at least the size asked for, under twice it), which costs a tenth of
        a real resize: plenty for a detector that compares frames with each other."""
        import cv2

        frame = self._frame
        step = min(frame.width // (2 * width), frame.height // (2 * height)) * 2
        if exact or frame.format.name != "yuv420p" or step < 2:
            turned = self._rotation in (90, 270)
            w, h = (height, width) if turned else (width, height)
            scaled = _reformatter().reformat(frame, width=w, height=h, format=fmt).to_ndarray()
            return np.ascontiguousarray(_turn(scaled, self._rotation))
        h, w = (frame.height // (2 * step)) * 2, (frame.width // (2 * step)) * 2
        y = _plane(frame, 0, frame.width, frame.height)[::step, ::step][:h, :w]
        u = _plane(frame, 1, frame.width // 2, frame.height // 2)[::step, ::step][: h // 2, : w // 2]
        v = _plane(frame, 2, frame.width // 2, frame.height // 2)[::step, ::step][: h // 2, : w // 2]
        i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(h * 3 // 2, w)
        code = cv2.COLOR_YUV2BGR_I420 if fmt == "bgr24" else cv2.COLOR_YUV2RGB_I420
        return np.ascontiguousarray(_turn(cv2.cvtColor(i420, code), self._rotation))


def decode_frames(path: str | os.PathLike, info: VideoInfo | None = None, threads: int = 0
                  ) -> Iterator[DecodedFrame]:
    """Every decoded frame of the first video stream, in presentation order, numbered from 0.

    Without ``info`` (no probe), the rotation comes from the frames' display matrix.
    ``threads``: the decoder's threads (0: libav's choice, one more than the cores, which on two
    cores took 18 % more time and 9 % more CPU than two threads)."""
    import av

    try:
        container = av.open(media_path(path), timeout=60)
    except av.error.FFmpegError as exc:
        check_not_empty(path)
        raise MediaError(f"cannot open: {exc}") from exc
    with container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        fps = float(info.fps) if info else float(stream.average_rate or 25)
        rotation = info.rotation if info else None
        index = 0
        try:
            for frame in container.decode(stream):
                if rotation is None:
                    rotation = int(round(-frame.rotation)) % 360  # PyAV reports counter-clockwise degrees
                time = frame.time if frame.time is not None else start + index / fps
                yield DecodedFrame(index, time, frame, rotation)
                index += 1
        except av.error.FFmpegError as exc:
            raise MediaError(f"decoding failed at frame {index}: {exc}") from exc


def uniform_indices(num_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly from the first frame to the last (fewer for short clips)."""
    if num_frames <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, num_frames - 1, min(count, num_frames))})


def middle_indices(num_frames: int, count: int) -> list[int]:
    """The middle frame (count 1), or ``count`` frames at the centres of equal parts of the clip."""
    return sorted({min(num_frames - 1, int((i + 0.5) * num_frames / count)) for i in range(count)})


def _packets(path: str | os.PathLike) -> list[tuple[int | None, bool]]:
    """(pts, is keyframe) of every video packet, in file order; nothing is decoded."""
    import av

    try:
        with av.open(media_path(path), timeout=60) as container:
            if not container.streams.video:
                raise MediaError("no video stream")
            return [(p.pts, p.is_keyframe) for p in container.demux(container.streams.video[0]) if p.size]
    except av.error.FFmpegError as exc:
        check_not_empty(path)
        raise MediaError(f"cannot read packets: {exc}") from exc


@functools.lru_cache(maxsize=4)
def _ranked(path: str, size: int, mtime_ns: int) -> tuple[list[int] | None, list[int]]:
    """(pts of every frame in presentation order, or None when the packets cannot be ranked: missing
    or repeated timestamps; decode indices of the key frames), from the packets alone.  Cached by
    the file's size and time: clips of one source read one after the other demux it once."""
    packets = _packets(path)
    stamps = [pts for pts, _ in packets]
    known = sorted((pts, key) for pts, key in packets if pts is not None)
    keys = [i for i, (_, key) in enumerate(known) if key]
    rankable = None not in stamps and len(set(stamps)) == len(stamps)
    return ([pts for pts, _ in known] if rankable else None), keys


def _packet_table(path: str | os.PathLike) -> tuple[list[int] | None, list[int]]:
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise MediaError(f"cannot read {os.fspath(path)}: {exc.strerror}") from exc
    return _ranked(os.fspath(path), stat.st_size, stat.st_mtime_ns)


def keyframe_indices(path: str | os.PathLike) -> list[int]:
    """Decode indices of the key frames, from the packets alone (nothing is decoded): a packet's
    rank in presentation order is its frame's index in ``decode_frames``."""
    return list(_packet_table(path)[1])


def _seeking_frames(path: str | os.PathLike, wanted: set[int], stamps: list[int], keys: list[int],
                    sparse: bool) -> Iterator[DecodedFrame]:
    """The wanted frames in index order, numbered by their packet's rank in presentation order (as
    in ``decode_frames``), decoding as little as possible:

    - before a wanted frame, when a key frame lies between what was decoded last and it, the demuxer
      seeks to that key frame instead of decoding the frames in between (a clip in the middle of a
      long source costs its own GOPs, not the source's start);
    - ``sparse``: a packet whose frame is not wanted is decoded only if other frames reference it
      (the decoder skips non-reference frames), which for a sampler taking one frame in 12 saves
      about 40% of the decoding.

    A wanted frame the decoder does not give (a seek that lands late, a broken packet) is left out;
    the caller notices."""
    import av

    rank = {pts: i for i, pts in enumerate(stamps)}
    todo = sorted(wanted)

    def key_before(index: int) -> int:
        return keys[bisect.bisect_right(keys, index) - 1] if keys and keys[0] <= index else -1

    with av.open(media_path(path), timeout=60) as container:
        stream = container.streams.video[0]
        # Frame threads would apply the skip setting to the wrong packets.
        stream.thread_type = "SLICE" if sparse else "AUTO"
        context = stream.codec_context
        following, last = 0, -1  # todo[following]: the next wanted frame; last: the latest frame decoded
        try:
            while following < len(todo):
                key = key_before(todo[following])
                if key > last + 1:
                    container.seek(stamps[key], stream=stream, backward=True)
                    last = key - 1
                jump = False
                for packet in container.demux(stream):
                    if sparse and packet.pts is not None:
                        context.skip_frame = "DEFAULT" if rank.get(packet.pts) in wanted else "NONREF"
                    for frame in packet.decode():
                        index = rank.get(frame.pts)
                        if index is None or index <= last:
                            continue
                        last = index
                        if index in wanted:
                            yield DecodedFrame(index, frame.time, frame, int(round(-frame.rotation)) % 360)
                        while following < len(todo) and todo[following] <= last:
                            following += 1
                    if following == len(todo):
                        return
                    if key_before(todo[following]) > last + 1:
                        jump = True
                        break
                if not jump:
                    return  # the end of the stream
        except av.error.FFmpegError as exc:
            raise MediaError(f"decoding failed: {exc}") from exc


def frames_at(path: str | os.PathLike, indices: Collection[int], sparse: bool = True) -> Iterator[DecodedFrame]:
    """The frames at the given decode indices, in index order, seeking past what is not wanted
    (``_seeking_frames``); when the packets cannot be ranked, every frame is decoded from the start
    and the wanted ones kept.  A frame that cannot be had is left out: the caller checks."""
    wanted = set(indices)
    if not wanted:
        return iter(())
    stamps, keys = _packet_table(path)
    if stamps is None:
        return (frame for frame in decode_frames(path) if frame.index in wanted)
    return _seeking_frames(path, wanted, stamps, keys, sparse)


@dataclass(frozen=True)
class FrameVectors:
    """The motion vectors of one predicted (P) frame, as the decoder exported them.

    ``index``: its decode index in the file; ``gap``: frames since the frame it predicts from (the
    previous I or P frame, which is what P frames of libx264 at its presets' one reference use);
    ``blocks``: one row per inter-predicted block, float32: its centre x and y (px), how far its
    content moved since that frame (dx, dy, px; + right and down) and its area (px²).  Intra blocks
    have no vector and no row."""

    index: int
    gap: int
    blocks: np.ndarray


def motion_vectors(path: str | os.PathLike, start: int = 0, count: int | None = None) -> list[FrameVectors] | None:
    """The P frames' motion vectors of frames ``start`` .. ``start + count`` (decode indices), from a
    decode of the I and P frames alone (B frames skipped: none references another in libx264's
    default pyramid, and their vectors would need their references' distances).  The codec computed
    them when the file was encoded; exporting them costs a little over the decode.

    None when they cannot be had: a codec that exports none (VP8, VP9, AV1), packets that cannot be
    ranked, or a P frame whose predecessor is not known."""
    import av
    from av.video.frame import PictureType

    stamps, keys = _packet_table(path)
    if stamps is None:
        return None
    rank = {pts: i for i, pts in enumerate(stamps)}
    end = len(stamps) if count is None else min(len(stamps), start + count)
    found: list[FrameVectors] = []
    with av.open(media_path(path), timeout=60) as container:
        stream = container.streams.video[0]
        # Frame threads export the vectors unreliably: two reads of one file differed, and some P
        # frames came without any.
        stream.thread_type = "SLICE"
        context = stream.codec_context
        context.options = {"flags2": "+export_mvs"}
        context.skip_frame = "BIDIR"
        key = keys[bisect.bisect_right(keys, start) - 1] if keys and keys[0] <= start else 0
        if key > 0:
            container.seek(stamps[key], stream=stream, backward=True)
        previous = None  # index of the last I or P frame decoded
        try:
            for frame in container.decode(stream):
                index = rank.get(frame.pts)
                if index is None or index < key:
                    continue
                if index >= end:
                    break
                if frame.pict_type == PictureType.P and index >= start:
                    side = frame.side_data.get("MOTION_VECTORS")
                    if side is None or previous is None:
                        return None
                    found.append(FrameVectors(index, index - previous, _blocks(side.to_ndarray())))
                previous = index
        except av.error.FFmpegError as exc:
            raise MediaError(f"decoding failed: {exc}") from exc
    return found


def _blocks(vectors: np.ndarray) -> np.ndarray:
    """The past-predicted rows of libavutil's AVMotionVector array as (x, y, dx, dy, area) float32.
    ``motion / motion_scale`` points from the block to where it came from (src = dst + motion):
    the content moved by its negative."""
    past = vectors[vectors["source"] < 0]
    scale = past["motion_scale"].astype(np.float32)
    return np.stack([past["dst_x"], past["dst_y"], -past["motion_x"] / scale, -past["motion_y"] / scale,
                     past["w"].astype(np.float32) * past["h"]], axis=1).astype(np.float32)


def read_frames(path: str | os.PathLike, indices: list[int], fmt: str = "rgb24") -> list[np.ndarray]:
    """The frames at the given decode indices, upright, at full size: HxWx3 ("rgb24", "bgr24") or
    HxW ("gray", the luma an OpenCV reader computes: BGR then ``COLOR_BGR2GRAY``).

    This is the project's one frame sampler, for clips and for ranges of long sources alike.  Frames
    nobody wants are not decoded unless other frames need them, whole GOPs before a wanted frame
    are skipped by seeking, decoding stops after the last wanted frame, and only wanted frames are
    converted.  A wanted index past the end of the video raises MediaError."""
    import cv2

    wanted = set(indices)
    if not wanted:
        return []
    # Then everything from the start, if the packets and the decoder disagreed (a broken packet
    # shifts the count).
    for source in (frames_at(path, wanted), decode_frames(path)):
        by_index = {}
        for frame in source:
            if frame.index in wanted and frame.index not in by_index:
                w, h = frame.size()
                image = frame.image(w, h, "rgb24" if fmt == "rgb24" else "bgr24", exact=True)
                by_index[frame.index] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if fmt == "gray" else image
                if len(by_index) == len(wanted):
                    return [by_index[i] for i in indices]
    missing = min(wanted - set(by_index))
    raise MediaError(f"video ends before frame {missing} ({len(by_index)} of {len(wanted)} frames read)")
