"""GPT-2 in plain PyTorch, written from the equations: the independent
reference that tests/gen-torch-reference.py computes logits with and
tests/gen-torch-gpt2.py computes gradients with. Learned position
embeddings, LayerNorm with bias, one fused qkv matrix (q, k, then v rows)
with its bias, GELU (tanh approximation), biases everywhere, the head tied
to the token embedding. Weights are a dict of tensors named as GGUF names
them; any float dtype."""
import torch
import torch.nn.functional as F

from torch_llama import attention


def forward(cfg, W, tokens):
    """Logits [B, T, vocab] of tokens [B, T]."""
    B, T = tokens.shape
    D, H = cfg["dim"], cfg["n_heads"]
    x = W["token_embd.weight"][tokens] + W["position_embd.weight"][:T]
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        h = F.layer_norm(x, (D,), W[p + "attn_norm.weight"], W[p + "attn_norm.bias"], cfg["eps"])
        qkv = F.linear(h, W[p + "attn_qkv.weight"], W[p + "attn_qkv.bias"])
        q, k, v = (t.reshape(B, T, H, D // H) for t in qkv.split(D, dim=-1))
        x = x + F.linear(attention(q, k, v), W[p + "attn_output.weight"], W[p + "attn_output.bias"])
        h = F.layer_norm(x, (D,), W[p + "ffn_norm.weight"], W[p + "ffn_norm.bias"], cfg["eps"])
        h = F.gelu(F.linear(h, W[p + "ffn_up.weight"], W[p + "ffn_up.bias"]), approximate="tanh")
        x = x + F.linear(h, W[p + "ffn_down.weight"], W[p + "ffn_down.bias"])
    x = F.layer_norm(x, (D,), W["output_norm.weight"], W["output_norm.bias"], cfg["eps"])
    return F.linear(x, W["token_embd.weight"])


def make(g, cfg):
    D, F_, V = cfg["dim"], cfg["hidden"], cfg["vocab"]
    # Drawn and computed in float32, so the weights the C tests read are
    # these exactly, whatever precision the reference then computes in.
    r = lambda *s, scale=0.3: torch.randn(*s, generator=g, dtype=torch.float32) * scale
    W = {"token_embd.weight": r(V, D, scale=1.0), "position_embd.weight": r(cfg["n_pos"], D),
         "output_norm.weight": 1 + r(D, scale=0.1), "output_norm.bias": r(D, scale=0.1)}
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        for n in ("attn_norm", "ffn_norm"):
            W[p + n + ".weight"] = 1 + r(D, scale=0.1)
            W[p + n + ".bias"] = r(D, scale=0.1)
        W[p + "attn_qkv.weight"] = r(3 * D, D)
        W[p + "attn_qkv.bias"] = r(3 * D, scale=0.1)
        W[p + "attn_output.weight"] = r(D, D)
        W[p + "attn_output.bias"] = r(D, scale=0.1)
        W[p + "ffn_up.weight"] = r(F_, D)
        W[p + "ffn_up.bias"] = r(F_, scale=0.1)
        W[p + "ffn_down.weight"] = r(D, F_)
        W[p + "ffn_down.bias"] = r(D, scale=0.1)
    return {n: t.to(torch.get_default_dtype()) for n, t in W.items()}
