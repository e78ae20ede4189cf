"""A file replayed as a camera (--realtime) and the live latency bench (bench --live)."""

from __future__ import annotations

import json
import re
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.runtime.live import RealtimeSource, open_live_source, run_live
from pix2pix_edge.runtime.video import open_source
from tests.slow_model import SleepyBackend


def write_video(path, n=36, fps=24, w=96, h=64):
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert wr.isOpened()
    for i in range(n):
        wr.write(np.full((h, w, 3), (i * 7 % 256, 100, 200), np.uint8))
    wr.release()
    return str(path)


def test_fast_reader_gets_every_frame_at_the_source_rate(tmp_path):
    src = open_live_source(write_video(tmp_path / "a.avi", n=36, fps=24))
    assert isinstance(src, RealtimeSource) and src.live and src.fps == 24
    t0 = time.perf_counter()
    frames = []
    while True:
        f = src.read()
        if f is None:
            break
        frames.append(f)
    elapsed = time.perf_counter() - t0
    src.close()
    assert [f.index for f in frames] == list(range(36))
    assert elapsed >= 35 / 24 - 0.02                         # not faster than real time
    gaps = np.diff([f.t_capture for f in frames])
    assert abs(float(np.median(gaps)) - 1 / 24) < 0.01      # one frame per interval
    assert src.missed == 0 and src.delivered == 36


def test_slow_reader_gets_the_newest_frame(tmp_path):
    src = open_live_source(write_video(tmp_path / "a.avi", n=48, fps=24))
    got = []
    while True:
        f = src.read()
        if f is None:
            break
        got.append(f)
        assert time.perf_counter() - f.t_capture < 1 / 24 + 0.05   # ~ one interval old, not queued
        time.sleep(0.1)                                    # a model slower than the source
    src.close()
    idx = [f.index for f in got]
    assert idx == sorted(idx) and len(idx) < 30
    assert max(np.diff(idx)) >= 2                          # stale frames were skipped
    assert src.missed + len(got) == src.delivered == 48


def test_realtime_refuses_live_sources_and_keeps_image_sets(tmp_path):
    class Live:
        live, uri = True, "0"
    with pytest.raises(BadInput, match="already live"):
        RealtimeSource(Live())
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        cv2.imwrite(str(d / f"{i}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    src = open_live_source(str(d), fps=100)
    assert [src.read().index for _ in range(3)] == [0, 1, 2] and src.read() is None
    src.close()


@pytest.mark.parametrize("ms", [100.0, 15.0])
def test_latency_stays_bounded_with_newest_frame_policy(tmp_path, ms):
    """Slower (100 ms) and faster (15 ms) than a 24 fps source: capture-to-output latency stays
    near the model's own time plus at most one frame interval; nothing queues."""
    video = write_video(tmp_path / "a.avi", n=96, fps=24)
    r = run_live(SleepyBackend(ms), video, frames=None, model_runs=5)
    lat = r["latency"]
    assert r["realtime"] and r["source_fps"] == 24
    assert lat["p50_ms"] <= r["model_p50_ms"] + 1000 / 24 + 15, r
    assert lat["p99_ms"] < r["model_p50_ms"] + 2 * 1000 / 24 + 40, r     # no growing queue
    assert r["dropped"] == r["frames_delivered"] - r["frames_out"]
    if ms > 1000 / 24:
        assert r["dropped"] > 20 and r["fps_delivered"] < 11      # the model's rate, not 24
    else:
        assert r["dropped"] <= 3 and r["fps_delivered"] > 20


@pytest.mark.parametrize("ms", [60.0, 0.0])
def test_max_frames_is_what_a_live_run_reads_and_writes(tmp_path, ms):
    """--realtime --max-frames 12 wrote 12 but said "13 in": capture went on reading while the
    output stage stopped. Now frames in = frames out + dropped, and out is what was asked, with a
    model slower (60 ms) and faster than the 48 fps source."""
    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline

    with open_live_source(write_video(tmp_path / "a.avi", n=96, fps=48)) as src:
        stats = run_pipeline(SleepyBackend(ms), src, None, PipelineOptions(max_frames=12))
    assert (stats.frames_out, stats.stopped_by) == (12, "max_frames")
    assert stats.frames_in == stats.frames_out + stats.dropped
    assert stats.dropped > 0 if ms else stats.dropped <= 3


def test_bench_live_writes_the_frames_asked_for(tiny_onnx, tmp_path):
    """bench --live --frames 120 said "125 written" (5 start-up frames on top) and counted the
    frames the replayed file went on delivering after the run as dropped."""
    js = tmp_path / "live.json"
    video = write_video(tmp_path / "a.avi", n=96, fps=48)
    r = run_live(SleepyBackend(5.0), video, frames=12, model_runs=20)
    assert r["frames_out"] == 12 and r["latency"]["n"] == 12 - r["startup_frames"] == 7
    assert r["frames_delivered"] == r["frames_out"] + r["dropped"]
    assert r["dropped"] == r["dropped_in_source"] + r["dropped_in_pipeline"] <= 3
    res = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--live", video, "--frames", "12",
                                   "--threads", "1", "--json", str(js)])
    assert res.exit_code == 0, res.output
    d = json.loads(js.read_text())["live"]
    assert d["frames_out"] == 12 and d["frames_delivered"] == 12 + d["dropped"]
    assert f"{d['frames_delivered']} delivered, 12 written, {d['dropped']} dropped" in res.output


def test_bench_live_cli(tiny_onnx, real_video, tmp_path):
    js = tmp_path / "live.json"
    r = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--live", str(real_video), "--frames",
                                 "24", "--threads", "1", "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert "capture-to-output latency: p50" in r.output and "dropped" in r.output
    assert "load average" in r.output
    d = json.loads(js.read_text())["live"]
    assert d["source_fps"] == 24 and d["frames_out"] == 24
    assert 0 < d["latency"]["p50_ms"] < 1000
    assert d["target_p50_ms"] == pytest.approx(d["model_p50_ms"] + 1000 / 24 + 5, abs=0.02)


def test_run_realtime_flag(tiny_onnx, real_video):
    r = CliRunner().invoke(cli, ["run", str(tiny_onnx), "--source", str(real_video), "--realtime",
                                 "--headless", "--max-frames", "12", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "(realtime)" in r.output and "12 out" in r.output
    n_in, n_out, dropped = map(int, re.search(r"frames: (\d+) in, (\d+) out, (\d+) dropped",
                                              r.output).groups())
    assert n_out == 12 and n_in == n_out + dropped
