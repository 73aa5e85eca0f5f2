"""The warm tiny Llama: the embedded model after a short pre-training on the synthetic skills' formats.

A random-initialised base cannot show what a pipeline does: nothing composes on it (merges of its
specialists score 0, a second fine-tune erases the first). A base that already half knows the three
skills, as a pretrained LLM does, can: specialists sharpen one skill, merges keep parts of two, and
training on conflicting data can make a skill worse than the base had it. The pre-training draws from
its own stream of examples (not the studies' train, val or test splits) and never changes: the recipe
is part of the cache key.
"""

from __future__ import annotations

from pathlib import Path

# Fixed on purpose: a study's results on `builtin:tiny-llama-warm` must not move when tasks change.
WARM_RECIPE = {"examples_per_skill": 300, "epochs": 4, "learning_rate": 1e-3, "batch_size": 16, "stream": "warm-up"}
_SKILLS = {"arithmetic": " {answer}", "choice": " [[{answer}]]", "facts": " {answer}"}  # generator -> answer format


def warm_rows(seed: int = 0) -> list[dict[str, str]]:
    """Prompt/completion rows of the three skills, from the warm-up stream, shuffled together."""
    import random

    from lamdagent.evaluation.sources import synthetic

    rows = []
    for name, answer in _SKILLS.items():
        for row in synthetic.generate(name, WARM_RECIPE["stream"], WARM_RECIPE["examples_per_skill"], seed):
            rows.append({"prompt": f"Question: {row['question']}\nAnswer:", "completion": answer.format(answer=row["answer"])})
    random.Random(f"warm/{seed}").shuffle(rows)
    return rows


def pretrain(model_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """Train the model in `model_dir` on `warm_rows` with TRL's SFTTrainer; save model and tokenizer to `out_dir`."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = SFTConfig(output_dir=str(out_dir / "trainer"), learning_rate=WARM_RECIPE["learning_rate"], num_train_epochs=WARM_RECIPE["epochs"],
                       per_device_train_batch_size=WARM_RECIPE["batch_size"], max_length=256, seed=seed, data_seed=seed, save_strategy="no",
                       report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available(), bf16=False)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(warm_rows(seed)), processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
