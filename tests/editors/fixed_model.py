"""A tiny exported model whose output is known: after any token it says WORD, after WORD it says EOS.

The random tiny model of tests/conftest.py produces gibberish that the server (rightly) often
drops, and a different gibberish on every build, so an editor test could neither count on a
suggestion nor check the buffer after accepting it. This one is a real GPT-2 graph run by the
real ONNX pipeline, with weights set by hand so it is a bigram model:

* attention and MLP output projections are zero, position embeddings are zero, so the hidden
  state at every position is the token embedding of the current token;
* embeddings put every token on one of two directions ("is WORD" or not), and the (untied)
  LM head maps "not WORD" to WORD and "WORD" to EOS.

So every completion is exactly WORD (" text"-free: the token "text"), e.g. `x = ` -> `x = text`.
"""

from __future__ import annotations

from pathlib import Path

WORD = "text"


def build_fixed_model_dir(path: Path, tokenizer, word: str = WORD) -> Path:  # noqa: ANN001 - tokenizers.Tokenizer
    import torch
    import transformers as tf

    from gpt_lsp.model.export import export_checkpoint
    from gpt_lsp.model.tokenizer import EOS_TOKEN, PAD_TOKEN

    word_id = tokenizer.token_to_id(word)
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    assert word_id is not None, f"{word!r} is not a single token of the test tokenizer"
    config = tf.GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_embd=32,
        n_layer=1,
        n_head=4,
        n_positions=128,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=tokenizer.token_to_id(PAD_TOKEN),
        tie_word_embeddings=False,
    )
    model = tf.GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for block in model.transformer.h:  # keep the layer norms sane (weight 1)
            block.ln_1.weight.fill_(1.0)
            block.ln_2.weight.fill_(1.0)
        model.transformer.ln_f.weight.fill_(1.0)
        wte = model.transformer.wte.weight
        wte[:, 1] = 1.0  # every token: "a token"
        wte[word_id, 0] = 1.0  # WORD also: "is WORD"
        ln = torch.nn.functional.layer_norm
        h_other = ln(wte[eos_id], (32,))
        h_word = ln(wte[word_id], (32,))
        head = model.lm_head.weight
        head[word_id] = 20.0 * (h_other - h_word)
        head[eos_id] = 20.0 * (h_word - h_other)
    checkpoint = path.parent / f"{path.name}-checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(checkpoint)
    tokenizer.save(str(checkpoint / "tokenizer.json"))
    export_checkpoint(checkpoint, path, int8=False)
    return path
