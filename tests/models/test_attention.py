import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from longdiv.models import attention, loading


class _Layer(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


def _inputs(queries=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(4, 6, queries, 8, generator=g).to(dtype)
    k = torch.randn(4, 2, 11, 8, generator=g).to(dtype)
    v = torch.randn(4, 2, 11, 8, generator=g).to(dtype)
    return q, k, v


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_one_query_without_a_mask_attends_as_the_librarys_sdpa(dtype):
    q, k, v = _inputs(dtype=dtype)
    got, _ = attention.sdpa(_Layer(), q, k, v, None, scaling=0.3)
    want, _ = sdpa_attention_forward(_Layer(), q, k, v, None, scaling=0.3)
    assert got.shape == want.shape == (4, 1, 6, 8)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(got.float(), want.float(), atol=tolerance, rtol=tolerance)


def test_masked_queries_and_prompts_are_the_librarys_sdpa_unchanged():
    q, k, v = _inputs()
    mask = torch.ones(4, 1, 1, 11, dtype=torch.bool)
    mask[0, ..., :4] = False
    assert torch.equal(attention.sdpa(_Layer(), q, k, v, mask)[0], sdpa_attention_forward(_Layer(), q, k, v, mask)[0])
    prompt = torch.randn(4, 6, 11, 8)
    assert torch.equal(attention.sdpa(_Layer(), prompt, k, v, None)[0],
                       sdpa_attention_forward(_Layer(), prompt, k, v, None)[0])


def test_models_of_the_attention_interface_use_it_and_gpt_neo_keeps_its_own():
    llama, _ = loading.load("scratch:smollm2-135m", "char", {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2})
    assert llama.config._attn_implementation == attention.NAME
    neo, _ = loading.load("tiny", None, None)
    assert neo.config._attn_implementation != attention.NAME
