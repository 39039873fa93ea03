"""The evaluation loop with a scripted oracle answerer: exact hand-computed scores, resume
after a crash without recomputation, question cutoffs, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, GenerationResult
from spatial_mllm_ros.bags import topics_from_params, write_frames
from spatial_mllm_ros.evaluation.cli import eval_main
from spatial_mllm_ros.evaluation.errors import ResultsFileError, ResumeMismatchError
from spatial_mllm_ros.evaluation.questions import Question, write_questions
from spatial_mllm_ros.evaluation.report import write_report
from spatial_mllm_ros.evaluation.results import RESULTS_FORMAT, load_results
from spatial_mllm_ros.evaluation.run_plan import EvalConfig
from spatial_mllm_ros.evaluation.runner import EvalRunner
from spatial_mllm_ros.exitcodes import ExitCode
from spatial_mllm_ros.params import defaults
from spatial_mllm_ros.settings import Settings
from spatial_mllm_ros.synthetic import make_walkthrough

START = 1_700_000_000_000_000_000
PARAMS = defaults()
#: the runner's settings: the schema defaults, lmms-eval wording (its first-token scoring rule is
#: what EXPECTED is computed with), no grounding pass (the oracle counts answer calls)
SETTINGS = Settings.from_values({"answer.prompt_template": "lmms-eval",
                                 "answer.grounding": False, "sampling.frame_budget": 4})


def Q(qid, qtype, gt, options=None, **kw) -> Question:
    return Question(
        id=qid,
        question=f"Question {qid}?",
        question_type=qtype,
        ground_truth=gt,
        options=options,
        **kw,
    )


ABCD = ("A. w", "B. x", "C. y", "D. z")
# id -> (question, the oracle's answer text)
CASES = {
    "count": (Q("count", "object_counting", 4.0), "4"),  # exact -> 1.0
    "dist": (Q("dist", "object_abs_distance", 2.5), "2.8 meters"),  # 12 % -> 0.8
    "size": (Q("size", "object_size_estimation", 100.0), "58"),  # 42 % -> 0.2
    "room": (Q("room", "room_size_estimation", 20.0), "about twenty"),  # unparseable -> 0
    "rd1": (Q("rd1", "object_rel_distance", "B", ABCD), "B"),  # 1
    "rd2": (Q("rd2", "object_rel_distance", "C", ABCD), "A. w"),  # 0
    "dir_e": (Q("dir_e", "object_rel_direction_easy", "A", ABCD[:2]), "A."),  # 1
    "dir_h": (Q("dir_h", "object_rel_direction_hard", "B", ABCD), "C"),  # 0
    "order": (Q("order", "obj_appearance_order", "D", ABCD), "D. z"),  # 1
}
# hand-computed (VSI-Bench thresholds 0.50..0.95, 10 values): 12 % error passes theta <= 0.85
# (8 of 10), 42 % passes theta <= 0.55 (2 of 10); direction = mean(easy 1, hard 0)
EXPECTED = {
    "object_counting": 100.0,
    "object_abs_distance": 80.0,
    "object_size_estimation": 20.0,
    "room_size_estimation": 0.0,
    "object_rel_distance": 50.0,
    "object_rel_direction": 50.0,
    "obj_appearance_order": 100.0,
}


class Oracle:
    """Answers each question with its scripted text; records calls and the frames it saw."""

    checkpoint_layout = "v1.1"

    def __init__(self, crash_after: int | None = None) -> None:
        self.calls = 0
        self.crash_after = crash_after
        self.seen: dict[str, list[int]] = {}

    def answer(self, frames, prompt, max_new_tokens=64, *, on_token=None, should_stop=None):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise KeyboardInterrupt("injected crash")
        self.calls += 1
        text = next(ln for ln in prompt.split("\n") if ln.startswith("Question "))
        qid = text.removeprefix("Question ").removesuffix("?")
        self.seen[qid] = [f.stamp_ns for f in frames]
        return GenerationResult(
            CASES[qid][1] if qid in CASES else "1", {"decode": 0.0}, 1, (64, 48)
        )


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    scene = make_walkthrough(2, n_frames=12, fps=4.0, width=64, height=48, start_ns=START)
    path = tmp_path_factory.mktemp("bag") / "scene"
    write_frames(scene.frames, path, topics_from_params(PARAMS))
    return path


def run(bag, out, answerer, questions=None, overrides=None, **cfg):
    config = EvalConfig(progress=False, **cfg)
    runner = EvalRunner(answerer, SETTINGS.with_overrides(overrides or {}), config)
    return runner.run(bag, questions or [c[0] for c in CASES.values()], out)


def test_oracle_gets_hand_computed_scores(bag, tmp_path) -> None:
    oracle = Oracle()
    summary = run(bag, tmp_path, oracle)
    assert summary.pairs_answered == 18 and oracle.calls == 18
    files = write_report(tmp_path, "vsibench", summary)
    doc = json.loads(files.metrics.read_text())
    for strategy in ("coverage", "uniform"):
        m = doc["strategies"][strategy]
        assert m["scores"] == pytest.approx(EXPECTED)
        assert m["overall"] == pytest.approx(400.0 / 7)
        assert m["unparseable"]["room_size_estimation"] == 1
        assert sum(m["unparseable"].values()) == 1  # "about twenty"; "A. w" gives the token "A"
    assert files.report.exists() and len(files.plots) == 3
    assert all(p.stat().st_size > 1000 for p in files.plots)
    lines = load_results(tmp_path / "results.jsonl")
    assert all((tmp_path / r["thumbnail"]).is_file() for r in lines)
    cov = [r["record"] for r in lines if r["strategy"] == "coverage"]
    assert all(r["coverage"] >= r["uniform_coverage"] - 1e-12 for r in cov)
    assert all(len(r["record"]["frame_stamps_ns"]) == 4 for r in lines)


# Spatial-MLLM's own rule (the default v1.1 wording): the whole cleaned answer must be the
# letter or the number, so "2.8 meters" is unparseable and "D. z" is not "d".
EXPECTED_V11 = {**EXPECTED, "object_abs_distance": 0.0, "obj_appearance_order": 0.0}


def test_spatial_mllm_wording_scores_with_its_own_rule(bag, tmp_path) -> None:
    summary = run(bag, tmp_path, Oracle(),
                  overrides={"answer.prompt_template": "spatial-mllm-v1.1"})
    doc = json.loads(write_report(tmp_path, "vsibench", summary).metrics.read_text())
    assert doc["strategies"]["coverage"]["scores"] == pytest.approx(EXPECTED_V11)
    lines = load_results(tmp_path / "results.jsonl")
    assert {r["prompt_template"] for r in lines} == {"spatial-mllm-v1.1"}


def test_paper_and_linspace11_thresholds(bag, tmp_path) -> None:
    run(bag, tmp_path, Oracle())
    doc = json.loads(write_report(tmp_path, "linspace11").metrics.read_text())
    # 11 thresholds 0.5, 0.545, ..., 0.95: 12 % passes theta <= 0.88 -> 0.5..0.86 = 9 of 11
    assert doc["strategies"]["coverage"]["scores"]["object_abs_distance"] == pytest.approx(900 / 11)
    # 42 % passes theta <= 0.58 -> 0.5, 0.545 = 2 of 11
    assert doc["strategies"]["coverage"]["scores"]["object_size_estimation"] == pytest.approx(
        200 / 11
    )


def test_resume_after_crash_recomputes_nothing(bag, tmp_path) -> None:
    ref = tmp_path / "ref"
    run(bag, ref, Oracle())
    ref_metrics = json.loads(write_report(ref).metrics.read_text())["strategies"]

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(bag, out, Oracle(crash_after=7))
    assert len(load_results(out / "results.jsonl")) == 7
    with (out / "results.jsonl").open("a") as f:  # a line cut off by the kill
        f.write('{"id": "dist", "strat')
    second = Oracle()
    summary = run(bag, out, second)
    assert second.calls == 18 - 7  # nothing answered twice
    assert summary.pairs_resumed == 7 and summary.pairs_answered == 11
    got = json.loads(write_report(out).metrics.read_text())["strategies"]
    for s in ("coverage", "uniform"):
        for key in ("scores", "overall", "counts", "unparseable", "sub_scores"):
            assert got[s][key] == ref_metrics[s][key]
    a = {
        (r["id"], r["strategy"]): r["record"]["frame_stamps_ns"]
        for r in load_results(out / "results.jsonl")
    }
    b = {
        (r["id"], r["strategy"]): r["record"]["frame_stamps_ns"]
        for r in load_results(ref / "results.jsonl")
    }
    assert a == b  # deterministic frame selection, interrupted or not
    third = Oracle()
    run(bag, out, third)
    assert third.calls == 0


def test_resume_with_other_settings_is_refused(bag, tmp_path) -> None:
    run(bag, tmp_path, Oracle(), limit=2)
    with pytest.raises(ResumeMismatchError, match="frame_budget"):
        EvalRunner(Oracle(), SETTINGS.with_overrides({"sampling.frame_budget": 3}),
                   EvalConfig(progress=False)).run(
            bag, [c[0] for c in CASES.values()], tmp_path
        )


def test_a_resume_refusal_names_only_what_differs(bag, tmp_path) -> None:
    """One readable line: the parameter that changed, not every parameter of both runs."""
    run(bag, tmp_path, Oracle(), limit=2)
    with pytest.raises(ResumeMismatchError) as refused:
        EvalRunner(Oracle(), SETTINGS.with_overrides({"sampling.frame_budget": 3}),
                   EvalConfig(progress=False)).run(
            bag, [c[0] for c in CASES.values()], tmp_path
        )
    message = str(refused.value)
    assert "sampling.frame_budget: 4 -> 3" in message and "buffer.max_frames" not in message
    assert len(message) < 300 and "\n" not in message


def test_cutoff_restricts_frames_to_earlier_stamps(bag, tmp_path) -> None:
    # frames every 0.25 s from START; a cutoff 1.1 s into the bag allows frames 0..4
    qs = [Q("early", "object_counting", 3.0, bag_time_s=1.1), Q("late", "object_counting", 3.0)]
    oracle = Oracle()
    run(bag, tmp_path, oracle, questions=qs, strategies=("uniform",),
        overrides={"sampling.frame_budget": 8})
    assert oracle.seen["early"] and max(oracle.seen["early"]) <= START + 1_100_000_000
    assert max(oracle.seen["late"]) > START + 1_100_000_000
    lines = {r["id"]: r for r in load_results(tmp_path / "results.jsonl")}
    assert lines["early"]["cutoff_stamp_ns"] == START + 1_100_000_000
    assert lines["early"]["buffer_frames"] <= 5 < lines["late"]["buffer_frames"]


def test_cli_errors_are_clear(bag, tmp_path, capsys) -> None:
    good = tmp_path / "q.jsonl"
    write_questions(good, [c[0] for c in CASES.values()])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": 1, "question": "x?", "question_type": "object_counting", "ground_truth": 2}\n'
        '{"id": 2, "question": "y?", "question_type": "object_counting"}\n'
    )
    assert eval_main([str(bag), "--questions", str(bad), "--out", str(tmp_path / "o")]) \
        == ExitCode.INPUT
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "'ground_truth'" in err and "Traceback" not in err
    assert (
        eval_main([str(tmp_path / "nobag"), "--questions", str(good), "--out", str(tmp_path / "o")])
        == ExitCode.INPUT
    )
    assert "bag not found" in capsys.readouterr().err
    assert (
        eval_main(
            [
                str(bag),
                "--questions",
                str(good),
                "--out",
                str(tmp_path / "o"),
                "--topic",
                "colour=/other/image",
            ]
        )
        == ExitCode.INPUT
    )
    err = capsys.readouterr().err
    assert "/other/image" in err and "/camera/camera/color/image_raw [sensor_msgs/msg/Image]" in err
    assert (
        eval_main(
            [
                str(bag),
                "--questions",
                str(good),
                "--out",
                str(tmp_path / "o"),
                "--checkpoint",
                str(tmp_path / "nockpt"),
            ]
        )
        == ExitCode.INPUT
    )
    assert f"{tmp_path / 'nockpt'} does not exist" in capsys.readouterr().err


def test_malformed_results_line_in_the_middle(tmp_path) -> None:
    p = tmp_path / "results.jsonl"
    ok = '{"format": %d, "id": %d, "strategy": "uniform"}\n'
    p.write_text(ok % (RESULTS_FORMAT, 1) + "not json\n" + ok % (RESULTS_FORMAT, 2))
    with pytest.raises(ResultsFileError, match=":2:"):
        load_results(p)


def test_result_lines_carry_the_answer_record_of_what_the_model_saw(bag, tmp_path) -> None:
    oracle = Oracle()
    run(bag, tmp_path, oracle, strategies=("uniform",))
    for r in load_results(tmp_path / "results.jsonl"):
        rec = r["record"]
        assert set(rec) == set(AnswerRecord(0, "", AnswerStatus.OK).to_json())
        assert rec["status"] == "OK" and rec["strategy"] == "uniform"
        assert rec["frame_stamps_ns"] == oracle.seen[r["id"]]
        assert rec["answer"] and r["score"]["prediction"]
        assert r["format"] == RESULTS_FORMAT and r["answerer_calls"] == 1


def test_thumbnails_are_captioned(bag, tmp_path) -> None:
    from spatial_mllm_ros.evaluation.thumbnails import CAPTION_PX

    run(bag, tmp_path, Oracle(), questions=[CASES["count"][0]], thumb_height=40)
    for r in load_results(tmp_path / "results.jsonl"):
        img = cv2.imread(str(tmp_path / r["thumbnail"]))
        assert img.shape[0] == 40 + CAPTION_PX


def test_results_of_an_older_format_are_refused_naming_the_versions(bag, tmp_path) -> None:
    old = {"id": "count", "strategy": "uniform", "status": "OK", "answer": "4"}  # format 1
    (tmp_path / "results.jsonl").write_text(json.dumps(old) + "\n")
    with pytest.raises(ResultsFileError, match=r"format 1.*format 2"):
        run(bag, tmp_path, Oracle())
    assert json.loads((tmp_path / "results.jsonl").read_text()) == old  # left as it was


class PredictingOracle(Oracle):
    """An oracle that can also predict geometry (here: always fails, so the pipeline falls
    back, saying so in the strategy name)."""

    def __init__(self) -> None:
        super().__init__()
        self.predictions = 0

    def predict_geometry(self, frames):
        self.predictions += 1
        raise RuntimeError("no geometry heads")


def test_colour_only_bag_uses_the_answerers_geometry_prediction(tmp_path) -> None:
    from dataclasses import replace

    from spatial_mllm_ros.answering.monocular import FALLBACK_STRATEGY

    scene = make_walkthrough(2, n_frames=12, fps=4.0, width=64, height=48, start_ns=START)
    colour = [replace(f, depth_m=None, intrinsics=None, pose=None) for f in scene.frames]
    write_frames(colour, tmp_path / "bag", topics_from_params(PARAMS))
    oracle = PredictingOracle()
    run(tmp_path / "bag", tmp_path / "out", oracle, questions=[CASES["count"][0]],
        strategies=("coverage",))
    (line,) = load_results(tmp_path / "out" / "results.jsonl")
    assert oracle.predictions == 1  # the node's path: the evaluator does not hide the method
    assert line["record"]["strategy"] == FALLBACK_STRATEGY and line["answerer_calls"] == 1
