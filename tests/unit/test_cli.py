import json

from typer.testing import CliRunner

from domix.cli import app

runner = CliRunner()


def test_corpus_build_from_jsonl_reports_bad_line_and_builds_good_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "domain": "x"}\n{oops\n')
    r = runner.invoke(
        app, ["corpus", "build", "mine", "--from", str(bad), "--out", str(tmp_path / "c")]
    )
    assert r.exit_code == 2 and "bad.jsonl:2: malformed JSON" in r.output
    good = tmp_path / "good.jsonl"
    rows = [
        {"id": f"{d}{i}", "text": f"{d} document number {i} " * 5, "domain": d}
        for d in "ab"
        for i in range(200)
    ]
    rows.append({"id": "e", "text": "  ", "domain": "a"})
    good.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    r = runner.invoke(
        app,
        [
            "corpus",
            "build",
            "mine",
            "--from",
            str(good),
            "--out",
            str(tmp_path / "c"),
            "--no-tokenize",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "400 documents" in r.output and "dropped 1: empty text" in r.output
    info = runner.invoke(app, ["corpus", "info", str(tmp_path / "c")])
    assert info.exit_code == 0 and "dropped 1: empty text" in info.output


def test_corpus_build_prompt_response_records(tmp_path):
    rows = [{"instruction": f"Answer question {i}.", "input": "" if i % 2 else f"context {i}",
             "output": f"answer {i} " * 3, "category": "ab"[i % 2]} for i in range(200)]
    rows[7] = {"instruction": "no answer here", "category": "a"}
    src = tmp_path / "sft.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["corpus", "build", "sft", "--from", str(src), "--out", str(tmp_path / "c"), "--no-tokenize",
            "--prompt-field", "instruction", "--prompt-field", "input", "--text-field", "output",
            "--domain-field", "category"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "sft.jsonl:8: no 'output' field (set fields.text to the response column)" in r.output
    r = runner.invoke(app, [*args, "--skip-bad"])
    assert r.exit_code == 0, r.output
    from domix.corpus import Corpus

    corpus = Corpus(tmp_path / "c")
    rec = {r["id"]: r for r in corpus.read(["id", "prompt", "text"]).to_pylist()}
    assert corpus.records and corpus.num_docs == 199
    assert rec["sft.jsonl:1"]["prompt"] == "Answer question 0.\n\ncontext 0"  # the prompt fields, joined
    assert rec["sft.jsonl:2"]["prompt"] == "Answer question 1." and rec["sft.jsonl:2"]["text"] == "answer 1 " * 3


def test_corpus_info_unknown_and_train_bad_config(tmp_path):
    r = runner.invoke(app, ["corpus", "info", "nothing-here"])
    assert r.exit_code == 2 and "domix corpus build" in r.output
    cfg = tmp_path / "run.yaml"
    cfg.write_text("train:\n  stepz: 3\n")
    r = runner.invoke(app, ["train", "--config", str(cfg)])
    assert (
        r.exit_code == 2
        and "unknown key 'train.stepz'" in r.output
        and "did you mean 'steps'" in r.output
    )


def test_every_command_help_shows_an_example():
    commands = (
        ["corpus", "build"],
        ["corpus", "info"],
        ["train"],
        ["demo"],
        ["compare"],
        ["compare", "report"],
        ["methods"],
        ["mix"],
        ["regroup", "run"],
        ["regroup", "show"],
        ["regroup", "list"],
    )
    for cmd in commands:
        r = runner.invoke(app, [*cmd, "--help"])
        assert r.exit_code == 0 and "Example" in r.output, cmd


def test_methods_lists_every_method_with_signals_cost_and_reference():
    from domix.balance.base import METHODS
    from domix.pipelines import PIPELINES

    r = runner.invoke(app, ["methods"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    for name, cls in [*METHODS.items(), *PIPELINES.items()]:
        line = next(x for x in lines if x.split() and x.split()[0] == name and cls.reference in x)
        assert "signals:" in line and "extra:" in line
    assert "excess_loss" in r.output and "domix mix doremi" in r.output


def test_mix_unknown_method_and_bad_param_fail_clearly(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model:\n  preset: micro\n")
    r = runner.invoke(app, ["mix", "regmx", "-c", str(cfg), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Did you mean 'regmix'" in r.output
    r = runner.invoke(app, ["mix", "regmix", "-c", str(cfg), "--out", str(tmp_path / "o"), "--param", "runz=3"])
    assert r.exit_code == 2 and "unknown key 'runz'" in r.output


def test_regroup_commands_run_show_list_and_fail_clearly(demo_corpus):
    ref = str(demo_corpus.path)
    r = runner.invoke(
        app, ["regroup", "run", ref, "--k", "3", "--embedder", "hashing", "--name", "cli3"]
    )
    assert r.exit_code == 0, r.output
    assert "regrouped:cli3  k=3" in r.output and "data.domains=regrouped:cli3" in r.output
    r = runner.invoke(app, ["regroup", "list", ref])
    assert r.exit_code == 0 and "regrouped:cli3" in r.output
    r = runner.invoke(app, ["regroup", "show", ref, "cli3"])
    assert r.exit_code == 0 and "## c02" in r.output
    r = runner.invoke(app, ["regroup", "show", ref, "missing"])
    assert r.exit_code == 2 and "available:" in r.output and "cli3" in r.output
    clusters = demo_corpus.path.parent / "cli3.clusters.json.gz"
    r = runner.invoke(app, ["regroup", "export", ref, "cli3", str(clusters)])
    assert r.exit_code == 0 and f"wrote {clusters}" in r.output
    r = runner.invoke(app, ["regroup", "import", ref, str(clusters), "--name", "cli3b"])
    assert r.exit_code == 0 and "regrouped:cli3b  k=3" in r.output
    r = runner.invoke(app, ["regroup", "list", ref])
    assert r.exit_code == 0 and f"imported from {clusters}" in r.output
    r = runner.invoke(app, ["regroup", "import", ref, str(clusters.with_suffix(".nope"))])
    assert r.exit_code == 2 and "no such clusters file" in r.output
    r = runner.invoke(app, ["regroup", "run", ref, "--k", "100000", "--embedder", "hashing"])
    assert r.exit_code == 2 and "error: k=100000 is larger than" in r.output
    r = runner.invoke(app, ["regroup", "run", ref, "--k", "3", "--model", "/no/such/model"])
    assert r.exit_code == 2 and "/no/such/model does not exist" in r.output


def test_compare_refuses_bad_grids_before_any_work(tmp_path):
    r = runner.invoke(app, ["compare", "--out", str(tmp_path / "c"), "--methods", "stratified,rbn"])
    assert r.exit_code == 2 and "Did you mean 'rnb'" in r.output
    r = runner.invoke(app, ["compare", "--out", str(tmp_path / "c"), "--domains", "original,topics"])
    assert r.exit_code == 2 and "'topics' is not one of" in r.output
    r = runner.invoke(app, ["compare", "--out", str(tmp_path / "c"), "--set", "seedz=[1]"])
    assert r.exit_code == 2 and "unknown key 'seedz'" in r.output
    assert not (tmp_path / "c" / "runs").exists()
