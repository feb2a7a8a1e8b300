"""Fine-tune a LoRA adapter on chat pairs with peft: `lorag adapters train`.

    lorag adapters train --base builtin:smollm2-135m-instruct \\
        --data pairs.jsonl --out adapters/my-adapter --epochs 3

Data is JSON lines, each either OpenAI's chat fine-tuning format,
`{"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}`
(the last message is the answer to learn), or `{"prompt": ..., "completion": ...}`.
Every example is rendered with the base model's chat template and the loss is
taken on the answer tokens only, so the adapter learns to answer, not to
repeat questions. The output folder is what vLLM loads as a LoRA module
(`adapter_config.json` + `adapter_model.safetensors`) plus `training.json`,
the record of how it was made.

From Python::

    metrics = train(TrainOptions(base="builtin:smollm2-135m-instruct",
                                 data="pairs.jsonl", out="out/", max_steps=20))
    metrics["heldout_loss_after"]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from lorag_core.model_source import public_model_name, resolve_model_source

__all__ = ["IGNORE_INDEX", "ROLES", "WARMUP_FRACTION", "TRAIN_EVAL_EXAMPLES",
           "TrainingError", "TrainOptions", "Example", "Encoded", "add_arguments",
           "run_command", "load_examples", "encode", "split_heldout", "batches", "train"]

IGNORE_INDEX = -100  # label value torch's cross entropy skips: prompt and padding
ROLES = frozenset({"system", "user", "assistant"})
WARMUP_FRACTION = 0.1
# The training loss before and after is measured on a fixed seeded sample of
# this many training examples: on a CPU a full pass can cost as much as training.
TRAIN_EVAL_EXAMPLES = 64


class TrainingError(ValueError):
    """Data or options that cannot be trained on; data errors name the file and line."""


@dataclass
class TrainOptions:
    base: str
    data: str
    out: str
    eval_data: str | None = None
    eval_fraction: float = 0.1
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 8
    lr: float = 2e-4
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_length: int = 512
    seed: int = 0


@dataclass
class Example:
    messages: list[dict[str, str]]
    where: str  # "file:line", for error messages


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


# ---------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `lorag adapters train`."""
    d = TrainOptions(base="", data="", out="")
    parser.add_argument("--base", required=True,
                        help="base model: builtin:NAME, a local folder or a Hugging Face id")
    parser.add_argument("--data", required=True, help="training data, JSON lines")
    parser.add_argument("--out", required=True, help="folder to write the adapter to")
    held = parser.add_mutually_exclusive_group()
    held.add_argument("--eval-data", help="held-out data, JSON lines")
    held.add_argument("--eval-fraction", type=float, default=d.eval_fraction,
                      help="share of --data held out (seeded) when --eval-data is not given")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="passes over the data")
    parser.add_argument("--max-steps", type=int, help="optimizer steps; overrides --epochs")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    parser.add_argument("--rank", type=int, default=d.rank, help="LoRA rank r")
    parser.add_argument("--alpha", type=int, default=d.alpha, help="LoRA alpha")
    parser.add_argument("--target-modules", default=",".join(d.target_modules),
                        type=lambda s: tuple(m.strip() for m in s.split(",") if m.strip()),
                        help="comma-separated module names to adapt")
    parser.add_argument("--max-length", type=int, default=d.max_length,
                        help="tokens per example (longer ones are truncated)")
    parser.add_argument("--seed", type=int, default=d.seed)


def run_command(args: argparse.Namespace) -> int:
    """Run `lorag adapters train` from parsed arguments; print a summary."""
    options = TrainOptions(**{f.name: getattr(args, f.name) for f in fields(TrainOptions)})
    try:
        m = train(options)
    except TrainingError as err:
        print(f"lorag: {err}", file=sys.stderr)
        return 2
    print(f"adapter written to {options.out}: {m['steps']} steps on {m['train_examples']} "
          f"examples in {m['seconds']:.0f} s")
    print(f"train loss {m['train_loss_before']:.3f} -> {m['train_loss_after']:.3f} "
          f"(on {m['train_loss_examples']} examples)")
    if m["heldout_examples"]:
        print(f"held-out loss {m['heldout_loss_before']:.3f} -> {m['heldout_loss_after']:.3f} "
              f"({m['heldout_examples']} examples)")
    return 0


# ---------------------------------------------------------------------------- data


def load_examples(path: str | Path) -> list[Example]:
    """Read JSON lines of chat pairs; a malformed line raises TrainingError naming it."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no such file")
    examples = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():  # a blank line carries no example (e.g. a trailing newline)
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise TrainingError(f"{where}: not valid JSON ({err.msg})") from None
            examples.append(Example(_messages(record, where), where))
    if not examples:
        raise TrainingError(f"{path}: no examples")
    return examples


def _messages(record: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(record, dict):
        raise TrainingError(f"{where}: expected a JSON object")
    if set(record) == {"prompt", "completion"}:
        prompt, completion = record["prompt"], record["completion"]
        if not (isinstance(prompt, str) and isinstance(completion, str) and completion):
            raise TrainingError(f"{where}: prompt and completion must be strings "
                                    "and the completion must not be empty")
        return [{"role": "user", "content": prompt},
                {"role": "assistant", "content": completion}]
    if set(record) != {"messages"}:
        raise TrainingError(f"{where}: expected either a 'messages' key or 'prompt' and "
                                f"'completion' keys, got {sorted(record)}")
    messages = record["messages"]
    if not isinstance(messages, list) or len(messages) < 2:
        raise TrainingError(f"{where}: 'messages' must be a list of at least two messages")
    for i, message in enumerate(messages):
        if (not isinstance(message, dict) or set(message) != {"role", "content"}
                or message["role"] not in ROLES or not isinstance(message["content"], str)):
            raise TrainingError(
                f"{where}: messages[{i}] must be {{'role': one of {sorted(ROLES)}, "
                "'content': a string}")
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"]:
        raise TrainingError(f"{where}: the last message must be a non-empty assistant answer")
    return messages


def encode(tokenizer: Any, example: Example, max_length: int) -> Encoded:
    """Tokenize with the chat template; labels cover the final answer only."""
    def ids(messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        text = tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=generation_prompt)
        # The template already writes the special tokens it wants.
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prompt = ids(example.messages[:-1], True)
    full = ids(example.messages, False)
    if full[:len(prompt)] != prompt:
        raise TrainingError(
            f"{example.where}: the chat template does not render the prompt as a prefix of the "
            "whole conversation, so the answer tokens cannot be separated from the prompt")
    if len(prompt) >= max_length:
        raise TrainingError(f"{example.where}: the prompt alone is {len(prompt)} tokens; "
                                f"nothing of the answer fits in --max-length {max_length}")
    labels = [IGNORE_INDEX] * len(prompt) + full[len(prompt):]
    return Encoded(full[:max_length], labels[:max_length])


def split_heldout(examples: list[Example], fraction: float, seed: int,
                  ) -> tuple[list[Example], list[Example]]:
    """A seeded split: the same data and seed always hold out the same examples."""
    if not 0 <= fraction < 1:
        raise TrainingError(f"--eval-fraction must be in [0, 1), got {fraction}")
    count = round(len(examples) * fraction)
    if fraction and count == 0:
        count = 1
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    if len(held) == len(examples):
        raise TrainingError("--eval-fraction leaves no training examples")
    return ([e for i, e in enumerate(examples) if i not in held],
            [e for i, e in enumerate(examples) if i in held])


def batches(items: list[Encoded], batch_size: int, pad_id: int,
            order: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Padded tensors per batch; each batch is only as long as its longest example."""
    import torch

    order = list(range(len(items))) if order is None else order
    for start in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[start:start + batch_size]]
        width = max(len(e.input_ids) for e in chunk)
        pad = [width - len(e.input_ids) for e in chunk]
        yield {
            "input_ids": torch.tensor([e.input_ids + [pad_id] * p for e, p in zip(chunk, pad)]),
            "attention_mask": torch.tensor([[1] * len(e.input_ids) + [0] * p
                                            for e, p in zip(chunk, pad)]),
            "labels": torch.tensor([e.labels + [IGNORE_INDEX] * p for e, p in zip(chunk, pad)]),
        }


# ---------------------------------------------------------------------------- training


def train(options: TrainOptions) -> dict[str, Any]:
    """Train and save a LoRA adapter; return the metrics also written to training.json."""
    import torch

    started = time.monotonic()
    train_set, held_set = _load_data(options)
    torch.manual_seed(options.seed)  # LoRA init, dropout and shuffling all draw from it
    model, tokenizer, device = _load_model(options)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_enc = [encode(tokenizer, e, options.max_length) for e in train_set]
    held_enc = [encode(tokenizer, e, options.max_length) for e in held_set]
    evaluate = functools.partial(_mean_loss, model, batch_size=options.batch_size,
                                 pad_id=pad_id, device=device)
    train_sample = random.Random(options.seed).sample(
        train_enc, min(len(train_enc), TRAIN_EVAL_EXAMPLES))
    metrics: dict[str, Any] = {
        "train_examples": len(train_enc), "heldout_examples": len(held_enc),
        "train_loss_examples": len(train_sample),
        "train_loss_before": evaluate(train_sample), "heldout_loss_before": evaluate(held_enc)}
    loop_started = time.monotonic()
    step_losses = _optimize(model, train_enc, options, pad_id, device)
    metrics.update(
        steps=len(step_losses), train_seconds=round(time.monotonic() - loop_started, 1),
        train_loss_after=evaluate(train_sample), heldout_loss_after=evaluate(held_enc),
        step_losses=[round(x, 4) for x in step_losses], device=str(device),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))
    metrics["seconds"] = round(time.monotonic() - started, 1)
    _save(model, options, metrics)
    return metrics


def _load_data(options: TrainOptions) -> tuple[list[Example], list[Example]]:
    for name in ("epochs", "max_steps", "batch_size", "rank", "max_length"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise TrainingError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    examples = load_examples(options.data)
    if options.eval_data:
        return examples, load_examples(options.eval_data)
    return split_heldout(examples, options.eval_fraction, options.seed)


def _load_model(options: TrainOptions) -> tuple[Any, Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_source(options.base)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        raise TrainingError(f"{options.base} has no chat template to render the examples with")
    # float32 even on a GPU: the adapter is small and full precision keeps runs repeatable.
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    config = LoraConfig(task_type="CAUSAL_LM", r=options.rank, lora_alpha=options.alpha,
                        lora_dropout=0.05, target_modules=list(options.target_modules))
    return get_peft_model(model, config), tokenizer, device


def _mean_loss(model: Any, items: list[Encoded], batch_size: int, pad_id: int,
               device: Any) -> float | None:
    """Loss per answer token over all items (not a mean of batch means)."""
    import torch

    if not items:
        return None
    model.eval()  # no dropout: the same adapter always scores the same
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches(items, batch_size, pad_id):
            batch = {k: v.to(device) for k, v in batch.items()}
            tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(model(**batch).loss) * tokens
            count += tokens
    model.train()
    return round(total / count, 4)


def _optimize(model: Any, items: list[Encoded], options: TrainOptions, pad_id: int,
              device: Any) -> list[float]:
    """AdamW with linear warmup and decay; returns the loss of every step."""
    import torch
    from tqdm import tqdm

    per_epoch = math.ceil(len(items) / options.batch_size)
    total = options.max_steps or options.epochs * per_epoch
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.0)
    warmup = max(1, round(total * WARMUP_FRACTION))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    shuffler = torch.Generator().manual_seed(options.seed)
    losses: list[float] = []
    model.train()
    with tqdm(total=total, desc="training", unit="step") as bar:
        while len(losses) < total:
            order = torch.randperm(len(items), generator=shuffler).tolist()
            for batch in batches(items, options.batch_size, pad_id, order):
                loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                bar.update()
                if len(losses) >= total:
                    break
    return losses


def _save(model: Any, options: TrainOptions, metrics: dict[str, Any]) -> None:
    import peft
    import torch
    import transformers

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    # Name the base publicly, never by this machine's cache path.
    config["base_model_name_or_path"] = public_model_name(options.base)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # peft's model card names the base by its local path; training.json says it all instead.
    (out / "README.md").unlink(missing_ok=True)
    record = {"args": asdict(options), "metrics": metrics,
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                           "peft": peft.__version__}}
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    # safetensors writes 0600; a server running as another user must read the weights.
    for f in out.iterdir():
        f.chmod(0o644)
