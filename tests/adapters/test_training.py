"""LoRA training: the data loader, its errors, and a few real steps on SmolLM2 (CPU, ~1 min)."""

import json
from pathlib import Path

import pytest

from adapters.training import (
    TrainingError,
    TrainOptions,
    load_examples,
    split_heldout,
    train,
)

DATA = Path(__file__).resolve().parents[2] / "adapters" / "samples" / "data"


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_loader_reads_messages_and_prompt_completion(tmp_path):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris"}]
    path = write_lines(tmp_path / "d.jsonl", [
        {"messages": messages}, "", {"prompt": "2 + 2?", "completion": "4"}])
    first, second = load_examples(path)
    assert first.messages == messages and first.where.endswith("d.jsonl:1")
    assert second.messages == [{"role": "user", "content": "2 + 2?"},
                               {"role": "assistant", "content": "4"}]
    assert second.where.endswith("d.jsonl:3")


@pytest.mark.parametrize("bad, reason", [
    ("{not json", "not valid JSON"),
    ([1, 2], "expected a JSON object"),
    ({"prompt": "hi"}, "expected either"),
    ({"prompt": "hi", "completion": ""}, "must not be empty"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "at least two"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "x"}]},
     "last message must be"),
    ({"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]},
     "messages[0]"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, reason):
    good = {"prompt": "2 + 2?", "completion": "4"}
    path = write_lines(tmp_path / "bad.jsonl", [good, good, bad])
    with pytest.raises(TrainingError) as err:
        load_examples(path)
    assert "bad.jsonl:3" in str(err.value) and reason in str(err.value)


def test_heldout_split_is_seeded_and_disjoint(tmp_path):
    examples = load_examples(DATA / "json_format.heldout.jsonl")
    train_a, held_a = split_heldout(examples, 0.2, seed=1)
    _, held_b = split_heldout(examples, 0.2, seed=1)
    assert [e.where for e in held_a] == [e.where for e in held_b]
    assert len(held_a) == round(len(examples) * 0.2)
    assert not {e.where for e in held_a} & {e.where for e in train_a}


def test_a_few_steps_lower_the_loss_and_write_a_vllm_adapter(tmp_path):
    lines = (DATA / "json_format.train.jsonl").read_text().splitlines()
    held = (DATA / "json_format.heldout.jsonl").read_text().splitlines()
    out = tmp_path / "adapter"
    metrics = train(TrainOptions(
        base="builtin:smollm2-135m-instruct", out=str(out),
        data=str(write_lines(tmp_path / "train.jsonl", lines[:24])),
        eval_data=str(write_lines(tmp_path / "held.jsonl", held[:12])),
        max_steps=5, batch_size=4, lr=2e-3, max_length=128, seed=0))

    losses = metrics["step_losses"]
    assert len(losses) == metrics["steps"] == 5
    assert max(losses[-2:]) < min(losses[:2])
    assert metrics["heldout_loss_after"] < metrics["heldout_loss_before"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 8
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    assert not (out / "README.md").exists()  # peft's card names this machine's cache path
    record = json.loads((out / "training.json").read_text())
    assert record["args"]["max_steps"] == 5 and record["metrics"]["steps"] == 5


def test_cli_parses_options_and_reports_bad_data(tmp_path, capsys):
    from serving.cli import build_parser, main

    data = write_lines(tmp_path / "d.jsonl", [{"prompt": "hi", "completion": "x"}, "[]"])
    argv = ["adapters", "train", "--base", "builtin:smollm2-135m-instruct", "--data", str(data),
            "--out", str(tmp_path / "out"), "--target-modules", "q_proj, v_proj", "--rank", "4"]
    args = build_parser().parse_args(argv)
    assert args.target_modules == ("q_proj", "v_proj") and args.rank == 4
    assert args.eval_fraction == 0.1 and args.epochs == 3
    assert main(argv) == 2  # the data is read before any model is loaded
    assert "d.jsonl:2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
