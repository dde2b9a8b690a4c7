"""Frame decoding with PyAV (libav in-process), and which frames a sampler takes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from video_caption.media.probe import VideoInfo
from video_caption.media.process import MediaError, media_path


def _turn(plane: np.ndarray, rotation: int) -> np.ndarray:
    return plane if rotation == 0 else np.rot90(plane, k=-(rotation // 90))


def _plane(frame, index: int, width: int, height: int) -> np.ndarray:
    """A view (no copy) of one plane of a decoded frame, without its line padding."""
    plane = frame.planes[index]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width]


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

    def size(self) -> tuple[int, int]:
        """(width, height) as displayed, after rotation."""
        w, h = self._frame.width, self._frame.height
        return (h, w) if self._rotation in (90, 270) else (w, h)

    def yuv420p(self, width: int, height: int) -> list:
        """The frame upright as planar YUV 4:2:0 buffers (Y, U, V) of the displayed size, both even.

        The buffers point into the decoder's frame when no conversion is needed (no copy)."""
        return [p.data if p.flags.c_contiguous else p.tobytes() for p in self._yuv_planes(width, height)]

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
            return np.ascontiguousarray(_turn(frame.to_ndarray(width=w, height=h, format=fmt), self._rotation))
        h, w = (frame.height // (2 * step)) * 2, (frame.width // (2 * step)) * 2
        y = _plane(frame, 0, frame.width, frame.height)[::step, ::step][:h, :w]
        u = _plane(frame, 1, frame.width // 2, frame.height // 2)[::step, ::step][: h // 2, : w // 2]
        v = _plane(frame, 2, frame.width // 2, frame.height // 2)[::step, ::step][: h // 2, : w // 2]
        i420 = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(h * 3 // 2, w)
        code = cv2.COLOR_YUV2BGR_I420 if fmt == "bgr24" else cv2.COLOR_YUV2RGB_I420
        return np.ascontiguousarray(_turn(cv2.cvtColor(i420, code), self._rotation))


def decode_frames(path: str | os.PathLike, info: VideoInfo | None = None) -> Iterator[DecodedFrame]:
    """Every decoded frame of the first video stream, in presentation order, numbered from 0.

    Without ``info`` (no ffprobe run), the rotation comes from the frames' display matrix."""
    import av

    try:
        container = av.open(media_path(path), timeout=60)
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot open: {exc}") from exc
    with container:
        if not container.streams.video:
            raise MediaError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
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
        raise MediaError(f"cannot read packets: {exc}") from exc


def keyframe_indices(path: str | os.PathLike) -> list[int]:
    """Decode indices of the key frames, from the packets alone (nothing is decoded): a packet's
    rank in presentation order is its frame's index in ``decode_frames``."""
    packets = sorted((pts, key) for pts, key in _packets(path) if pts is not None)
    return [i for i, (_, key) in enumerate(packets) if key]


def _sparse_frames(path: str | os.PathLike, wanted: set[int]) -> Iterator[DecodedFrame] | None:
    """The wanted frames only, decoding as little as possible: a packet whose frame is not wanted is
    decoded only if other frames reference it (the decoder skips non-reference frames), which for
    a sampler taking one frame in 12 saves about 40% of the decoding.  Frames are numbered by their
    packet's rank in presentation order, as in ``decode_frames``; None when the packets cannot be
    ranked (missing or repeated timestamps), and the caller decodes everything instead."""
    import av

    packets = _packets(path)
    stamps = [pts for pts, _ in packets]
    if None in stamps or len(set(stamps)) != len(stamps):
        return None
    rank = {pts: i for i, pts in enumerate(sorted(stamps))}

    def frames() -> Iterator[DecodedFrame]:
        with av.open(media_path(path), timeout=60) as container:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"  # frame threads would apply the skip setting to the wrong packets
            context = stream.codec_context
            found = 0
            try:
                for packet in container.demux(stream):
                    if packet.pts is not None:
                        context.skip_frame = "DEFAULT" if rank.get(packet.pts) in wanted else "NONREF"
                    for frame in packet.decode():
                        index = rank.get(frame.pts)
                        if index in wanted:
                            yield DecodedFrame(index, frame.time, frame, int(round(-frame.rotation)) % 360)
                            found += 1
                    if found == len(wanted):
                        return
            except av.error.FFmpegError as exc:
                raise MediaError(f"decoding failed: {exc}") from exc

    return frames()


def read_frames(path: str | os.PathLike, indices: list[int], fmt: str = "rgb24") -> list[np.ndarray]:
    """The frames at the given decode indices, upright, at full size: HxWx3 ("rgb24", "bgr24") or
    HxW ("gray", the luma an OpenCV reader computes: BGR then ``COLOR_BGR2GRAY``).

    This is the project's one frame sampler.  Frames nobody wants are not decoded unless other
    frames need them, decoding stops after the last wanted frame, and only wanted frames are
    converted.  A wanted index past the end of the video raises MediaError."""
    import cv2

    wanted = set(indices)
    if not wanted:
        return []
    sparse = _sparse_frames(path, wanted)
    # Then everything, if the packets and the decoder disagreed (a broken packet shifts the count).
    for source in (sparse, decode_frames(path)) if sparse is not None else (decode_frames(path),):
        by_index = {}
        for frame in source:
            if frame.index in wanted:
                w, h = frame.size()
                image = frame.image(w, h, "rgb24" if fmt == "rgb24" else "bgr24", exact=True)
                by_index[frame.index] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if fmt == "gray" else image
                if len(by_index) == len(wanted):
                    return [by_index[i] for i in indices]
    missing = min(wanted - set(by_index))
    raise MediaError(f"video ends before frame {missing} ({len(by_index)} of {len(wanted)} frames read)")
