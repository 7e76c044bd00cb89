"""The HuggingFace Trainer script that recorded hf_trainer.log, hf_first.log and hf_resume.log.

A tiny BERT built from a config (no download), random token data, accuracy as the metric, the
Trainer's own defaults for logging and checkpoints (printed dicts between tqdm bars,
OUTPUT_DIR/checkpoint-N folders each with its trainer_state.json).

    python hf_trainer_script.py --output-dir DIR [--epochs N] [--resume] [--sleep S]

--resume: trainer.train(resume_from_checkpoint=True), i.e. from the newest DIR/checkpoint-N.
--sleep: seconds to sleep after each optimizer step (a window to kill the run mid-epoch).
Needs torch, transformers and accelerate; see README.md for the versions used.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EvalPrediction,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

VOCAB = 100
SEQ_LEN = 16


class RandomTokens(Dataset):
    """Random token ids: label 1 draws its tokens from the upper half of the vocabulary, label 0
    from the lower half (a tiny BERT learns it within three epochs), then 10% of labels flip."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        half = VOCAB // 2
        self.ids = torch.randint(1, half, (n, SEQ_LEN), generator=g) + self.labels[:, None] * half
        self.ids[:, 0] = 0  # a [CLS]-like first token
        flip = torch.rand(n, generator=g) < 0.1  # 10% label noise: accuracy stays below 1
        self.labels = torch.where(flip, 1 - self.labels, self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(SEQ_LEN, dtype=torch.long),
            "labels": self.labels[i],
        }


class SleepCallback(TrainerCallback):
    """Sleeps after every optimizer step, so a test (or a person) can kill the run mid-epoch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(self.seconds)


def compute_metrics(pred: EvalPrediction) -> dict[str, float]:
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == pred.label_ids).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", required=True)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--sleep", type=float, default=0.0)
    args = p.parse_args()

    set_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=SEQ_LEN,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_steps=5,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        learning_rate=2e-3,
        report_to="none",
        use_cpu=True,
        disable_tqdm=False,
        seed=0,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=RandomTokens(256, seed=1),
        eval_dataset=RandomTokens(64, seed=2),
        compute_metrics=compute_metrics,
        callbacks=[SleepCallback(args.sleep)] if args.sleep else None,
    )
    trainer.train(resume_from_checkpoint=True if args.resume else None)


if __name__ == "__main__":
    main()
