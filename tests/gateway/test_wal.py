"""The local log's frames: whole ones read back in order, a torn tail and a corrupt frame
skipped alone, a read cut by its size limit resumed, full segments rotated by the sync
thread."""

from __future__ import annotations

from pathlib import Path

from services.gateway.inference_log.wal import SegmentWriter, count_frames, frame, read_frames


def payloads(n: int, size: int = 100) -> list[bytes]:
    return [f"{i:06d}".encode() * (size // 6) for i in range(n)]


def test_a_corrupt_frame_and_a_torn_tail_are_skipped_alone(tmp_path: Path) -> None:
    records = payloads(5)
    frames = [frame(p) for p in records]
    broken = bytearray(frames[2])
    broken[-1] ^= 0xFF  # its checksum no longer matches
    segment = tmp_path / "s.wal"
    segment.write_bytes(b"".join([*frames[:2], bytes(broken), *frames[3:]]) + frames[0][:7])
    out = read_frames(segment, 0, 100)
    assert out.payloads == records[:2] + records[3:]
    assert out.corrupt == 1 and out.incomplete and not out.more


def test_a_read_cut_by_its_size_limit_says_there_is_more(tmp_path: Path) -> None:
    segment = tmp_path / "s.wal"
    segment.write_bytes(b"".join(frame(p) for p in payloads(50, 1000)))
    seen, start = [], 0
    while True:
        out = read_frames(segment, start, 1000, max_bytes=4096)
        seen += out.payloads
        start = out.end
        if not out.more:
            break
    assert seen == payloads(50, 1000) and not out.incomplete
    assert count_frames(segment, 0) == 50


def test_a_full_segment_is_closed_and_the_next_one_started_off_the_request_path(
        tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, segment_bytes=1000)
    writer.append(payloads(20))  # past the size: still one segment until sync runs
    first, _ = writer.extent()
    writer.sync()
    assert writer.extent() == (None, 0)  # closed; nothing grows any more
    writer.append(payloads(1))
    second, written = writer.extent()
    writer.close()
    assert first is not None and second is not None and first != second
    assert count_frames(tmp_path / first, 0) == 20
    assert written == (tmp_path / second).stat().st_size
