"""How likely a model finds a task's reference answers: the mean negative log-likelihood per target
token, teacher-forced. Cheaper than generating, and graded where accuracy is still 0 or already 1,
so a small change of the model shows (the data screening's signal)."""

from __future__ import annotations


def target_losses(model, tokenizer, tasks: list, split: str, n: int, seed: int, chat_template: bool = False,
                  batch_size: int = 32) -> dict[str, float]:
    """Task name -> mean NLL (nats per token) of the first `n` examples' targets of `split`, given their prompts."""
    import torch

    from lamdagent.models.chat_template import chat_prompt

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    model.eval()
    losses = {}
    for task in tasks:
        examples = task.examples(split, n, seed)
        total, counted = 0.0, 0
        for start in range(0, len(examples), batch_size):
            sequences, labels = [], []
            for example in examples[start:start + batch_size]:
                prompt = chat_prompt(tokenizer, example.prompt) if chat_template else example.prompt
                context = tokenizer(prompt)["input_ids"]
                target = tokenizer(example.target.strip() if chat_template else example.target, add_special_tokens=False)["input_ids"]
                sequences.append(context + target)
                labels.append([-100] * len(context) + target)
            width = max(len(s) for s in sequences)
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences], device=device)
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device)
            gold = torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels], device=device)
            with torch.inference_mode():
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold[:, 1:].reshape(-1), ignore_index=-100,
                                                    reduction="sum")
            total += float(nll)
            counted += int((gold[:, 1:] != -100).sum())
        losses[task.name] = total / max(counted, 1)
    return losses
