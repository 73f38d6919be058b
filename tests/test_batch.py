"""`facetalk batch`: jobs files validated up front, a local process pool and Ray (a local instance and
a simulated two-node cluster), failed jobs recorded, workers killed mid-job, resuming, no partial files.

Media: the built-in portrait and 1 s cuts of the built-in voice, written to tmp folders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetalk.batch import run
from facetalk.batch.jobs import parse_rows, read_rows
from facetalk.batch.worker import CRASH_ONCE
from facetalk.cli import main

REPO = Path(__file__).resolve().parents[1]
RATE = 16000


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, voice: np.ndarray, portrait_path: Path,
          wav_file_writer: Callable[..., Path]) -> Path:
    """A folder with the portrait, four 1 s voice cuts, a photo without a face and a broken clip."""
    d = tmp_path_factory.mktemp("batch_media")
    (d / "me.png").write_bytes(portrait_path.read_bytes())
    for i in range(4):
        start = int((0.4 + 0.9 * i) * RATE)
        wav_file_writer(d / f"v{i}.wav", voice[start : start + RATE])
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(d / "wall.png")
    (d / "broken.wav").write_bytes(b"RIFF not really a wav" * 50)
    return d


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def done(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.mp4") if not p.name.startswith("."))


def partials(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if ".partial" in p.name)


def assert_photo_analysed_once_per_worker(records: list[dict]) -> None:
    built = Counter((r["worker"], r["image"]) for r in records if r.get("rig") == "built")
    assert built and max(built.values()) == 1, built


def assert_finished(records: list[dict], lines: list[int]) -> None:
    """Every job once, all rendered, each output a whole, marked video."""
    from facetalk.safety.verify import verify

    assert sorted(r["line"] for r in records) == lines
    assert [r["status"] for r in records] == ["ok"] * len(lines), records
    for r in records:
        assert Path(r["output"]).is_file() and r["frames"] == 25
    assert verify(records[0]["output"]).ours


# --- the jobs file --------------------------------------------------------------------------------

def test_bad_rows_are_reported_with_line_numbers_before_any_work(media: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    jobs = write_csv(media / "bad_jobs.csv", "image,audio,distance,gaze,size,full_frame",
                     "me.png,v0.wav,,,,",
                     "me.png,v0.wav,3,,,",  # line 3: out of range
                     "missing.png,v0.wav,,,,",
                     "me.png,v0.wav,,\"40,0\",,",
                     "me.png,v0.wav,,,513,",
                     "me.png,v0.wav,,,,maybe")
    out = tmp_path / "out"
    assert main(["batch", str(jobs), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "facetalk: error: bad_jobs.csv line 3: --distance must be within 0.5..2, got 3.0"
    assert err[1].startswith("facetalk: error: bad_jobs.csv line 4: image file") and "does not exist" in err[1]
    assert err[2].startswith("facetalk: error: bad_jobs.csv line 5: --gaze must be (yaw, pitch) within")
    assert err[3] == ("facetalk: error: bad_jobs.csv line 6: crop size must be an even number of pixels "
                      "within 64..2048, got 513")
    assert "line 7: full_frame takes true or false" in err[4]
    assert "5 bad rows in bad_jobs.csv, nothing rendered" in err[5] and len(err) == 6
    assert not done(out)
    # the same message `facetalk generate` gives for the same option
    assert main(["generate", "-q", "--image", str(media / "me.png"), "--audio", str(media / "v0.wav"),
                 "-o", str(tmp_path / "x.mp4"), "--distance", "3"]) == 2
    assert capsys.readouterr().err.strip() == "facetalk: error: --distance must be within 0.5..2, got 3.0"
    # an unknown column is the header's fault: line 1
    write_csv(media / "typo.csv", "image,audio,sed", "me.png,v0.wav,3")
    assert main(["batch", str(media / "typo.csv"), "--out", str(out)]) == 2
    assert "typo.csv' line 1: unknown column 'sed'" in capsys.readouterr().err


def test_jsonl_rows_take_generate_options(media: Path, tmp_path: Path) -> None:
    jobs = media / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(r) for r in [
        {"image": "me.png", "audio": "v0.wav", "gaze": [10, -5], "emotion": "happy:0.5", "full-frame": True,
         "seed": 7, "fps": 30, "watermark": False, "label": "yes", "output": "sub/first"},
        {"image": "me.png", "audio": "v1.wav", "no_blink": 1, "motion_intensity": 0.5, "size": 256},
        {"image": "me.png", "audio": "v1.wav"},  # same default name as the row before
    ]) + "\n\n")
    parsed, bad = parse_rows(read_rows(jobs), tmp_path, base=media)
    assert not bad
    a, b, c = parsed
    assert (a.line, b.line, c.line) == (1, 2, 3)
    assert a.controls.gaze == (10.0, -5.0) and a.controls.emotion == "happy:0.5" and a.controls.seed == 7
    assert a.full_frame and a.fps == 30 and not a.watermark and a.label
    assert a.output == str(tmp_path / "sub" / "first.mp4")
    assert not b.controls.blink and b.controls.motion_intensity == 0.5 and b.size == 256 and b.watermark
    assert Path(b.output).name == "v1_me.mp4" and Path(c.output).name == "v1_me-line3.mp4"
    assert a.image == str(media / "me.png")


def test_a_text_column_gives_the_words_as_generate_text_does(media: Path, tmp_path: Path) -> None:
    from facetalk.batch.worker import run_job

    jobs = write_csv(media / "text_jobs.csv", "image,audio,text,output",
                     'me.png,v1.wav,"talking face",said',  # v1: the built-in voice's "(t)alking face"
                     "me.png,v1.wav,hello qzxwv,",
                     "me.png,v2.wav,,")
    parsed, bad = parse_rows(read_rows(jobs), tmp_path, base=media)
    assert [(j.line, j.text) for j in parsed] == [(2, "talking face"), (4, None)]
    assert [b.line for b in bad] == [3] and "'qzxwv' is not in the pronouncing dictionary" in bad[0].message
    record = run_job(parsed[0])
    assert record["status"] == "ok" and record["frames"] == 25 and Path(tmp_path / "said.mp4").is_file()
    assert record["notes"] == []  # the words aligned to the sound: no fall back to the phones heard


# --- the local process pool -----------------------------------------------------------------------

def test_local_pool_records_good_and_failed_jobs(media: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    jobs = write_csv(media / "mixed.csv", "image,audio,output,seed",
                     "me.png,v0.wav,,1",
                     "wall.png,v1.wav,noface,",  # no face: fails, the batch goes on
                     "me.png,v1.wav,,2",
                     "me.png,broken.wav,,",  # unreadable audio
                     "me.png,v2.wav,,-x",  # invalid: skipped with --skip-bad
                     "me.png,v3.wav,,3")
    out = tmp_path / "out"
    rc = main(["batch", str(jobs), "--out", str(out), "--workers", "2", "--skip-bad", "-q"])
    std = capsys.readouterr()
    assert rc == 1
    assert "3 rendered, 0 already done, 2 failed, 1 bad rows skipped of 6 jobs" in std.out
    assert std.err.strip().splitlines()[-1].startswith("facetalk: error: 3 of 6 jobs failed")
    records = results(out)
    assert [r["line"] for r in records] == [2, 3, 4, 5, 6, 7]
    status = {r["line"]: r for r in records}
    assert [status[n]["status"] for n in (2, 4, 7)] == ["ok"] * 3
    assert status[3]["status"] == "failed" and status[3]["error"].startswith("no face found in the photo")
    assert status[5]["status"] == "failed" and status[5]["error"].startswith("cannot read audio")
    assert status[6]["status"] == "invalid" and "--seed: invalid int value: '-x'" in status[6]["error"]
    for n in (2, 4, 7):
        assert Path(status[n]["output"]).is_file() and status[n]["frames"] == 25
        assert len(status[n]["watermark_id"]) == 8
    assert len({status[n]["watermark_id"] for n in (2, 4, 7)}) == 3
    assert done(out) == ["v0_me.mp4", "v1_me.mp4", "v3_me.mp4"]
    assert partials(out) == []
    assert_photo_analysed_once_per_worker(records)


def test_worker_killed_mid_job_is_retried_on_a_fresh_pool(media: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    flag = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ONCE, str(flag))  # the first job to write 5 frames kills its own process
    rows = [{"image": str(media / "me.png"), "audio": str(media / f"v{i}.wav")} for i in range(2)]
    report = run(rows, tmp_path / "out", workers=1, retries=1)
    assert flag.exists()
    assert report.ok and [r["status"] for r in report.results] == ["ok"] * 2
    assert [r["attempts"] for r in report.results] == [2, 1]  # the killed job ran again, once
    assert [r["line"] for r in results(tmp_path / "out")] == [1, 2]
    assert len({r["worker"] for r in report.results}) == 1  # on the fresh pool's worker
    assert partials(tmp_path / "out") == []


def test_interrupted_batch_is_completed_by_running_it_again(media: Path, tmp_path: Path) -> None:
    jobs = write_csv(media / "resume.csv", "image,audio", *(f"me.png,v{i}.wav" for i in range(3)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "import sys; from facetalk.cli import main; sys.exit(main())",
           "batch", str(jobs), "--out", str(out), "--workers", "1", "-q"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not done(out) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)  # into the next job
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "terminated by SIGTERM" in err
    finished = done(out)
    assert 1 <= len(finished) < 3 and partials(out) == []
    (out / ".v2_me.mp4.partial-0badc0de.mp4").write_bytes(b"left by a SIGKILLed run")

    report = run(jobs, out, workers=1)
    assert report.ok
    status = [r["status"] for r in report.results]
    assert status.count("skipped") == len(finished) and status.count("ok") == 3 - len(finished)
    assert all(r["frames"] == 25 for r in report.results)
    assert done(out) == [f"v{i}_me.mp4" for i in range(3)]
    assert partials(out) == []


# --- Ray ------------------------------------------------------------------------------------------

try:
    import ray
except ImportError:  # the local pool needs nothing more; only these tests need the [ray] extra
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install 'facetalk[ray]'): "
                                                    "the Ray backend is not tested")


@pytest.fixture(scope="class")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="class")
def ray_cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="WARNING")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@needs_ray
@pytest.mark.usefixtures("ray_local")
class TestRayLocal:
    def test_jobs_run_as_ray_tasks_and_a_killed_worker_is_retried(self, media: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
        flag = tmp_path / "crashed"
        monkeypatch.setenv(CRASH_ONCE, str(flag))  # forwarded to the tasks' environment
        jobs = write_csv(media / "ray.csv", "image,audio,seed", *(f"me.png,v{i}.wav,{i}" for i in range(3)))
        out = tmp_path / "out"
        assert main(["batch", str(jobs), "--out", str(out), "--ray", "-q"]) == 0, capsys.readouterr().err
        assert "3 rendered" in capsys.readouterr().out
        assert flag.exists()
        records = results(out)
        assert_finished(records, [2, 3, 4])
        assert partials(out) == []
        assert_photo_analysed_once_per_worker(records)
        # run again: nothing to do
        assert main(["batch", str(jobs), "--out", str(out), "--ray", "-q"]) == 0
        assert [r["status"] for r in results(out)] == ["skipped"] * 3


@needs_ray
@pytest.mark.usefixtures("ray_cluster")
class TestRayCluster:
    def test_two_nodes_share_the_batch_and_survive_a_killed_worker(self, ray_cluster, media: Path,  # noqa: ANN001
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
        flag = tmp_path / "crashed"
        monkeypatch.setenv(CRASH_ONCE, str(flag))
        rows = [{"image": str(media / "me.png"), "audio": str(media / f"v{i}.wav"), "seed": i} for i in range(3)]
        report = run(rows, tmp_path / "out", ray_address=ray_cluster.address, retries=2)
        assert flag.exists() and report.ok
        records = results(tmp_path / "out")
        assert_finished(records, [1, 2, 3])
        assert len({r["node"] for r in records}) == 2  # both nodes did work
        assert partials(tmp_path / "out") == []
