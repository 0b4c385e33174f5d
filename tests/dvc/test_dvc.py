"""The DVC pipeline of the test environment (``conf/test/dvc.yaml``), through the real binaries.

One full ``dvc repro conf/test/dvc.yaml`` is shared by the module (``dvc_repo``); tests that change
anything work on a copy or a clone of it. Besides the repro in that fixture, three tests run
stages again: an M parameter change (mdn, controller, evaluate), a reproduction from scratch in a
fresh clone by ``kedro run`` (every stage; its artifacts are compared byte for byte with the
repro's) and an interrupted repro (vae only: the rest is cached).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dvc.conftest import (
    DATA_ROOT,
    ENV,
    ENV_NAME,
    PROJECT_ROOT,
    TEST_DVC_LOCK,
    TEST_DVC_YAML,
    DvcRepo,
    copy_project,
    copy_repo,
    git_clone,
    git_commit,
    load_yaml,
    lock_outs,
    run,
    set_param,
    sha256_tree,
    stage_outs,
)

STAGES = ["rollouts", "vae", "encode", "mdn", "controller", "evaluate", "gan"]
DOWNSTREAM_OF_MDN = ["mdn", "controller", "evaluate"]
METRICS_FILE = f"{DATA_ROOT}/08_reporting/metrics.json"
PLOT_IDS = ["vae_history", "mdn_history", "controller_history", "evaluation_returns"]
# Training histories hold wall-clock columns; everything else in them is deterministic.
HISTORIES = [
    *(f"{DATA_ROOT}/08_reporting/{name}.csv" for name in PLOT_IDS[:3]),
    f"{DATA_ROOT}/08_reporting/gan_history.csv",
    f"{DATA_ROOT}/08_reporting/judge_history.csv",
]
TIMING_COLUMNS = {"seconds", "items_per_s", "frames_per_s"}
# Outs that record wall-clock time, so differ between two runs of the same code and seed:
# the histories, and report.html (its table of each node's last wall time, from stage_times.json).
NOT_BITWISE = {*HISTORIES, f"{DATA_ROOT}/08_reporting/report.html"}


def stage_ran(output: str, stage: str) -> bool:
    return f"Running stage '{TEST_DVC_YAML}:{stage}'" in output


def stage_skipped(output: str, stage: str) -> bool:
    return f"Stage '{TEST_DVC_YAML}:{stage}' didn't change, skipping" in output


def status(repo: Path) -> dict:
    """``dvc status --json conf/test/dvc.yaml``: ``{"conf/test/dvc.yaml:<stage>": [changes]}``."""
    return run(["dvc", "status", "--json", TEST_DVC_YAML], repo).json()


def changed_stages(repo: Path) -> set[str]:
    return {key.split(":", 1)[1] for key in status(repo)}


def read_history(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return [
            {k: v for k, v in row.items() if k not in TIMING_COLUMNS}
            for row in csv.DictReader(handle)
        ]


# ------------------------------------------------------------------ the generator (no DVC run)
GENERATED = ["base", "test", "doom", "retro", "sonic"]


def test_generated_dvc_yaml_is_up_to_date() -> None:
    """dvc.yaml and conf/<env>/dvc.yaml are what the generator writes (one process for all)."""
    # PYTHONPATH: read this checkout's modules even if the editable install points elsewhere.
    result = run(
        [sys.executable, "-m", "world_models_kedro.tools.dvc_yaml", "--env", *GENERATED, "--check"],
        PROJECT_ROOT,
        check=False,
        env=ENV | {"PYTHONPATH": str(PROJECT_ROOT / "src")},
    )
    assert result.returncode == 0, result.output[-2000:]


def test_generator_writes_paths_inside_the_project(tmp_path: Path) -> None:
    copy = copy_project(tmp_path / "copy")
    run([sys.executable, "-m", "world_models_kedro.tools.dvc_yaml", "--env", "test"], copy)
    stages = load_yaml(copy / TEST_DVC_YAML)["stages"]
    deps = {dep for stage in stages.values() for dep in stage["deps"]}
    # Upstream outputs (data/...) do not exist before a repro; code and configuration must.
    outside = sorted(
        d
        for d in deps
        if d.startswith("..") or (not d.startswith("data/") and not (copy / d).exists())
    )
    assert not outside, f"deps outside the project: {outside[:3]}"
    assert any(d.startswith("src/world_models_kedro/models/") for d in deps)


# ------------------------------------------------------------------ repro
@pytest.mark.slow
def test_repro_writes_every_out_and_a_second_repro_runs_nothing(dvc_repo: DvcRepo) -> None:
    repo = dvc_repo.path
    for stage in STAGES:
        assert stage_ran(dvc_repo.repro_output, stage), stage
    declared = stage_outs(repo)
    assert list(declared) == STAGES
    for stage, outs in declared.items():
        for out in outs:
            assert (repo / out).exists(), f"{stage}: {out} missing after dvc repro"
    # dvc.lock records every stage with every out.
    locked = lock_outs(repo)
    assert set(locked) == set(STAGES)
    for stage, outs in declared.items():
        assert set(locked[stage]) == set(outs), stage
    # The committed repository is clean, up to date, and a second repro runs nothing.
    assert run(["git", "status", "--porcelain"], repo).stdout == ""
    assert status(repo) == {}
    again = run(["dvc", "repro", TEST_DVC_YAML], repo).output
    assert "Running stage" not in again, again
    assert all(stage_skipped(again, stage) for stage in STAGES), again
    assert run(["git", "status", "--porcelain"], repo).stdout == ""


MDN_SETTING = "conf/test/parameters_mdn.yml:mdn.learning_rate=0.002"


@pytest.mark.slow
def test_parameter_changes_rerun_the_right_stages(dvc_repo: DvcRepo) -> None:
    """A rollouts setting marks rollouts; a VAE setting marks vae only; an M setting, reproduced,
    reruns mdn and what reads M (controller, evaluate) while the rest stays cached.

    The M change is reproduced with ``dvc exp run -S`` (the README's command), which is
    ``dvc repro`` plus a commit under ``refs/exps``: one run checks both (a plain ``dvc repro``
    after editing the file prints the same stage lines).
    """
    repo = copy_repo(dvc_repo.path, dvc_repo.scratch / "params")
    # rollouts: status only (evaluate reads params:rollouts too, so it is listed as well).
    set_param(repo, "conf/test/parameters_rollouts.yml", "rollouts.policy.sigma", 0.1)
    assert changed_stages(repo) == {"rollouts", "evaluate"}
    run(["git", "checkout", "conf/test/parameters_rollouts.yml"], repo)
    assert status(repo) == {}

    # vae: learning_rate (kl_weight would not do: the free-bits clamp makes it a no-op here).
    set_param(repo, "conf/test/parameters_vae.yml", "vae.learning_rate", 0.002)
    changes = status(repo)
    assert set(changes) == {f"{TEST_DVC_YAML}:vae"}
    assert "conf/test/parameters_vae.yml" in json.dumps(changes)
    run(["git", "checkout", "conf/test/parameters_vae.yml"], repo)

    output = run(["dvc", "exp", "run", TEST_DVC_YAML, "-S", MDN_SETTING], repo).output
    assert "Ran experiment(s)" in output, output
    for stage in STAGES:
        ran = stage_ran(output, stage)
        assert ran == (stage in DOWNSTREAM_OF_MDN), f"{stage}: ran {ran}:\n{output}"
        assert ran or stage_skipped(output, stage), f"{stage}: neither ran nor skipped:\n{output}"
    # The workspace holds the experiment: the new setting, a new M, the same V.
    assert load_yaml(repo / "conf/test/parameters_mdn.yml")["mdn"]["learning_rate"] == 0.002
    after = lock_outs(repo)
    for stage in ("rollouts", "vae", "encode", "gan"):
        assert after[stage] == dvc_repo.outs[stage], stage
    mdn_pt = f"{DATA_ROOT}/06_models/mdn.pt"
    assert after["mdn"][mdn_pt] != dvc_repo.outs["mdn"][mdn_pt]
    assert status(repo) == {}
    changed = set(run(["git", "diff", "--name-only"], repo).stdout.split())
    assert {TEST_DVC_LOCK, "conf/test/parameters_mdn.yml"} <= changed
    # Anything else git tracks and the experiment changed: reports kept in git (if un-ignored).
    assert all(
        path.startswith(f"{DATA_ROOT}/08_reporting/")
        for path in changed - {TEST_DVC_LOCK, "conf/test/parameters_mdn.yml"}
    )
    # ...and git keeps it as an experiment of the baseline commit.
    rows = run(["dvc", "exp", "show", "--json"], repo).json()
    (baseline,) = [row for row in rows if row["rev"] != "workspace"]
    (experiment,) = [rev for exp in baseline["experiments"] for rev in exp["revs"]]
    params = experiment["data"]["params"]["conf/test/parameters_mdn.yml"]["data"]
    assert params["mdn"]["learning_rate"] == 0.002
    for row in (baseline, experiment):  # metrics of commits come from git (cache: false)
        assert isinstance(row["data"]["metrics"][METRICS_FILE]["data"]["agent"]["mean"], float)


# ------------------------------------------------------------------ remote storage
@pytest.mark.slow
def test_push_then_pull_restores_every_cached_out_byte_for_byte(dvc_repo: DvcRepo) -> None:
    repo = copy_repo(dvc_repo.path, dvc_repo.scratch / "push_pull")
    remote = dvc_repo.scratch / "remote_push_pull"
    run(["dvc", "remote", "add", "-d", "local", remote], repo)
    run(["dvc", "push"], repo)
    before = sha256_tree(repo / DATA_ROOT)
    cached = [
        out for outs in stage_outs(repo).values() for out, is_cached in outs.items() if is_cached
    ]
    expected = {
        name: digest
        for name, digest in before.items()
        if any(
            f"{DATA_ROOT}/{name}" == out or f"{DATA_ROOT}/{name}".startswith(out + "/")
            for out in cached
        )
    }
    assert len(expected) > len(cached)  # the three episode folders hold several files each

    # Delete what DVC tracks, and its cache (training states, uncached reports etc. stay).
    for out in cached:
        target = repo / out
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    shutil.rmtree(repo / ".dvc/cache")

    # `dvc pull` without a target also tries the root dvc.yaml (base scale, never reproduced
    # here: no dvc.lock) and exits 1 after restoring the test outs; name the test pipeline.
    run(["dvc", "pull", TEST_DVC_YAML], repo)
    after = sha256_tree(repo / DATA_ROOT)
    assert {name: after.get(name) for name in expected} == expected
    assert run(["dvc", "status", "-c", TEST_DVC_YAML], repo).returncode == 0


@pytest.mark.slow
def test_a_fresh_clone_with_pulled_data_is_up_to_date(dvc_repo: DvcRepo) -> None:
    """What a colleague does: every out comes back, from git (``cache: false`` reports, which
    .gitignore must not ignore) or from the remote (the rest), so nothing needs to rerun."""
    origin = copy_repo(dvc_repo.path, dvc_repo.scratch / "origin")
    remote = dvc_repo.scratch / "remote_clone"
    run(["dvc", "remote", "add", "-d", "local", remote], origin)
    git_commit(origin, "dvc remote")
    run(["dvc", "push", TEST_DVC_YAML], origin)
    clone = git_clone(origin, dvc_repo.scratch / "clone_pull")
    run(["dvc", "pull", TEST_DVC_YAML], clone)
    assert status(clone) == {}


@dataclass
class KedroRun:
    clone: Path  # a fresh clone reproduced from nothing by `kedro run`
    unrecorded: set[str]  # stages `dvc status` marked after the rollouts ran with the hook off
    output: str  # what the full `kedro run` printed


@pytest.fixture(scope="module")
def kedro_run(dvc_repo: DvcRepo) -> KedroRun:
    """A fresh clone (no data, no cache, no training states) reproduced from nothing by the
    README's main command, ``kedro run``: the rollouts first with the DVC hook switched off,
    then the whole default pipeline. Also the second run from scratch the reproducibility tests
    compare with ``dvc repro``'s (a second ``dvc repro`` would add a minute to the suite)."""
    clone = git_clone(dvc_repo.path, dvc_repo.scratch / "clone_kedro_run")
    kedro = ["kedro", "run", f"--env={ENV_NAME}"]
    run([*kedro, "--pipelines=rollouts"], clone, env={**ENV, "WMK_DVC_COMMIT": "0"})
    unrecorded = changed_stages(clone)
    return KedroRun(clone, unrecorded, run(kedro, clone).output)


def test_kedro_run_and_dvc_agree(dvc_repo: DvcRepo, kedro_run: KedroRun) -> None:
    """The README's main command is ``kedro run``: the stages it ran in full are recorded in
    dvc.lock and the DVC cache, so ``dvc status`` is clean and ``dvc repro`` runs nothing."""
    assert "rollouts" in kedro_run.unrecorded  # the hook off: not in DVC's cache
    assert "dvc: recorded rollouts, vae, encode, mdn, controller, evaluate, gan" in kedro_run.output
    clone = copy_repo(kedro_run.clone, dvc_repo.scratch / "kedro_run_again")
    assert status(clone) == {}
    repro = run(["dvc", "repro", TEST_DVC_YAML], clone)
    assert not any(stage_ran(repro.output, stage) for stage in STAGES), repro.output
    # command-line parameters are invisible to DVC: such a run is not recorded
    kedro = ["kedro", "run", f"--env={ENV_NAME}", "--pipelines=evaluate"]
    tweaked = run([*kedro, "--params=evaluate.trials=2"], clone)
    assert "not recorded in dvc.lock: --params on the command line" in tweaked.output


# ------------------------------------------------------------------ reproducibility
@pytest.mark.slow
def test_same_seed_gives_bitwise_identical_artifacts(
    dvc_repo: DvcRepo, kedro_run: KedroRun
) -> None:
    """Rollouts, V, latents, M, its sequences, C, the evaluation and its figures: identical md5s
    (on CPU) for every out that holds no wall-clock time, between two runs from scratch, one by
    ``dvc repro`` (a process per stage) and one by ``kedro run`` (one process)."""
    first, second = dvc_repo.outs, lock_outs(kedro_run.clone)
    assert set(first) == set(second)
    differ = [
        f"{stage}: {out}"
        for stage, outs in first.items()
        for out, md5 in outs.items()
        if out not in NOT_BITWISE and second[stage].get(out) != md5
    ]
    assert not differ, f"differ between two runs from scratch: {differ}"


@pytest.mark.slow
def test_training_histories_differ_only_in_timings(dvc_repo: DvcRepo, kedro_run: KedroRun) -> None:
    for history in HISTORIES:
        assert read_history(kedro_run.clone / history) == read_history(dvc_repo.path / history)


# ------------------------------------------------------------------ interrupted repro
def wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"dvc repro ended before '{text}':\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"no '{text}' after {timeout}s:\n{log.read_text()[-3000:]}")


def block_rwlock_with_live_pid(rwlock: Path) -> None:
    """What a reused PID looks like: the rwlock entries now name a running process (pytest)."""
    text = rwlock.read_text()
    pids = {int(pid) for pid in re.findall(r'"pid": (\d+)', text)}
    for pid in pids:
        text = text.replace(f'"pid": {pid}', f'"pid": {os.getpid()}')
    rwlock.write_text(text)


@pytest.mark.slow
def test_repro_recovers_after_a_hard_kill_mid_stage(dvc_repo: DvcRepo) -> None:
    repo = copy_repo(dvc_repo.path, dvc_repo.scratch / "killed")
    log = dvc_repo.scratch / "killed.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            ["dvc", "repro", "-f", TEST_DVC_YAML],
            cwd=repo,
            env=ENV,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: dvc and the kedro run it started
        )
        try:
            wait_for(log, f"Running stage '{TEST_DVC_YAML}:vae'", proc)
            wait_for(log, "Running node: train_vae", proc, timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert "vae" in changed_stages(repo)
    rwlock = repo / ".dvc/tmp/rwlock"
    stale = rwlock.read_text()
    assert f'"pid": {proc.pid}' in stale  # the killed dvc still "holds" its paths

    # 1. If the PID has been reused by a live process, DVC refuses and names the file to delete.
    block_rwlock_with_live_pid(rwlock)
    blocked = run(["dvc", "repro", TEST_DVC_YAML], repo, check=False)
    assert blocked.returncode != 0
    assert "is being blocked by" in blocked.output and "rwlock" in blocked.output, blocked.output
    assert "Running stage" not in blocked.output

    # 2. The usual case: the PID is dead, DVC drops the stale entries by itself and carries on.
    rwlock.write_text(stale)
    resumed = run(["dvc", "repro", TEST_DVC_YAML], repo).output
    assert "had been killed. Auto removed it from the lock file" in resumed, resumed
    assert stage_ran(resumed, "vae"), resumed
    assert status(repo) == {}
    # V resumes from its training state, so nothing changes: the rest stays cached.
    assert lock_outs(repo) == dvc_repo.outs
    for stage in ["encode", "mdn", "controller", "evaluate"]:
        assert stage_skipped(resumed, stage), resumed

    # 3. The manual step (README): no dvc running, yet "blocked" -> delete .dvc/tmp/rwlock.
    rwlock.write_text(stale)
    block_rwlock_with_live_pid(rwlock)
    assert run(["dvc", "repro", TEST_DVC_YAML], repo, check=False).returncode != 0
    rwlock.unlink()
    assert "Data and pipelines are up to date" in run(["dvc", "repro", TEST_DVC_YAML], repo).output


def repair_tool(repo: Path, *args: str, check: bool = True):
    return run(
        [sys.executable, "-m", "world_models_kedro.tools.dvc_repair", *args], repo, check=check
    )


def cut_lock(lock: Path, lines: int = 300) -> bytes:
    """The fault campaign's damage: dvc.lock cut to its first ``lines`` lines."""
    whole = lock.read_bytes()
    lock.write_bytes(b"".join(whole.splitlines(keepends=True)[:lines]))
    return whole


@pytest.mark.slow
def test_damaged_dvc_files_are_repaired(dvc_repo: DvcRepo) -> None:
    """A dvc killed while writing its own files (issue 14, finding 1): an empty rwlock blocked
    every later command; a cut dvc.lock made DVC re-run stages (or fail to load it)."""
    repo = copy_repo(dvc_repo.path, dvc_repo.scratch / "damaged")
    rwlock = repo / ".dvc/tmp/rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text("")  # `: > .dvc/tmp/rwlock`
    blocked = run(["dvc", "repro", TEST_DVC_YAML], repo, check=False)
    assert blocked.returncode != 0 and "Unable to read RWLock-file" in blocked.output
    report = repair_tool(repo, "--check", check=False)
    assert report.returncode == 1 and ".dvc/tmp/rwlock: empty" in report.output
    assert "moved aside" in repair_tool(repo).output
    assert "Data and pipelines are up to date" in run(["dvc", "repro", TEST_DVC_YAML], repo).output

    lock = repo / TEST_DVC_LOCK
    committed = cut_lock(lock)
    assert "vae" in changed_stages(repo)  # what DVC makes of it: vae and all after it re-run
    assert "cut short: its last stage 'vae'" in repair_tool(repo, "--check", check=False).output
    assert "restored from git" in repair_tool(repo).output
    assert lock.read_bytes() == committed and status(repo) == {}
    assert (repo / f"{TEST_DVC_LOCK}.damaged").exists()  # nothing written is lost
    assert repair_tool(repo, "--check").returncode == 0


@pytest.mark.slow
def test_kedro_run_repairs_damaged_dvc_files_before_recording(dvc_repo: DvcRepo) -> None:
    repo = copy_repo(dvc_repo.path, dvc_repo.scratch / "damaged_kedro")
    (repo / ".dvc/tmp").mkdir(parents=True, exist_ok=True)
    (repo / ".dvc/tmp/rwlock").write_text("")
    cut_lock(repo / TEST_DVC_LOCK)
    result = run(["kedro", "run", f"--env={ENV_NAME}", "--pipelines=evaluate"], repo)
    assert "dvc: repaired .dvc/tmp/rwlock: empty" in result.output
    assert f"dvc: repaired {TEST_DVC_LOCK}: cut short" in result.output
    assert "dvc: recorded evaluate" in result.output
    assert status(repo) == {}
    outs = lock_outs(repo)  # restored from git; evaluate recorded anew (its report has timings)
    assert {k: v for k, v in outs.items() if k != "evaluate"} == {
        k: v for k, v in dvc_repo.outs.items() if k != "evaluate"
    }


# ------------------------------------------------------------------ metrics and plots
@pytest.mark.slow
def test_metrics_show_the_evaluation(dvc_repo: DvcRepo) -> None:
    repo = dvc_repo.path
    shown = run(["dvc", "metrics", "show", "--json", METRICS_FILE], repo).json()
    metrics = shown[""]["data"][METRICS_FILE]["data"]
    assert isinstance(metrics["agent"]["mean"], float)
    assert isinstance(metrics["random"]["mean"], float)
    assert metrics["trials"] == metrics["agent"]["n"] == 3
    # Without a target DVC also reads the other environments' dvc.yaml (the root one, conf/doom/):
    # their metrics show when git holds them, else as FileNotFoundError entries; exit status 0.
    everything = run(["dvc", "metrics", "show", "--json"], repo).json()[""]["data"]
    assert everything[METRICS_FILE]["data"] == metrics
    others = {path: entry for path, entry in everything.items() if path != METRICS_FILE}
    assert "data/08_reporting/metrics.json" in others
    for entry in others.values():
        assert "data" in entry or entry["error"]["type"] == "FileNotFoundError", entry


@pytest.mark.slow
def test_metrics_of_the_last_commit_are_readable(dvc_repo: DvcRepo) -> None:
    """metrics.json is ``cache: false``: git must keep it, or ``dvc metrics diff`` (and
    ``dvc exp show``) have no values for any commit."""
    repo = dvc_repo.path
    committed = json.loads(run(["git", "show", f"HEAD:{METRICS_FILE}"], repo).stdout)
    assert committed == json.loads((repo / METRICS_FILE).read_text())
    # HEAD against the workspace, which holds exactly what HEAD recorded: no difference.
    assert METRICS_FILE not in run(["dvc", "metrics", "diff", "--json"], repo).json()


@pytest.mark.slow
def test_plots_show_json_has_data_for_every_test_plot(dvc_repo: DvcRepo) -> None:
    repo = dvc_repo.path
    ids = [f"{TEST_DVC_YAML}::{plot}" for plot in PLOT_IDS]
    shown = run(["dvc", "plots", "show", "--json", *ids], repo).json()
    assert not shown.get("errors"), shown.get("errors")
    for plot in PLOT_IDS:
        (rendered,) = shown["data"][plot]
        assert rendered["content"]["data"]["values"], plot
    # Without targets: the same plots under "conf/test/dvc.yaml::<id>", plus, for the other
    # environments' dvc.yaml, their plots or (files not made here) FileNotFoundError entries.
    everything = run(["dvc", "plots", "show", "--json"], repo).json()
    for plot in PLOT_IDS:
        assert everything["data"][f"{TEST_DVC_YAML}::{plot}"][0]["content"]["data"]["values"]
    errors = everything.get("errors", [])
    assert not [error for error in errors if error["name"].startswith(TEST_DVC_YAML)]
    assert {error["type"] for error in errors} <= {"FileNotFoundError"}
