from hub.device import choose, probe_kind


def test_cuda_gets_fp16_and_bf16_only_where_asked_and_supported():
    assert choose(cuda=True).device == "cuda" and choose(cuda=True).dtype == "float16"
    assert choose(cuda=True, bf16=True, prefers="bfloat16").dtype == "bfloat16"
    assert choose(cuda=True, bf16=False, prefers="bfloat16").dtype == "float16"


def test_mps_fp16_cpu_fp32():
    assert (choose(mps=True).device, choose(mps=True).dtype) == ("mps", "float16")
    assert (choose().device, choose().dtype) == ("cpu", "float32")


def test_cpu_never_runs_half_precision_and_says_why():
    p = choose("cpu", "float16", cuda=True)
    assert (p.device, p.dtype) == ("cpu", "float32") and "float32" in p.reason


def test_requested_but_missing_accelerator_falls_back_with_reason():
    p = choose("cuda")
    assert p.device == "cpu" and "CUDA" in p.reason
    assert choose("mps").device == "cpu"


def test_explicit_dtype_is_honoured_on_gpu():
    assert choose("cuda", "float32", cuda=True).dtype == "float32"
    assert choose("cuda", "bfloat16", cuda=True, bf16=False).dtype == "float16"


def test_probe_needs_no_torch():
    import subprocess
    import sys

    code = "import sys; from hub.device import probe_kind; k = probe_kind('auto'); assert 'torch' not in sys.modules; print(k)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out in ("cpu", "cuda", "mps")
    assert probe_kind("cpu") == "cpu" and probe_kind("cuda:1") == "cuda"


def test_cpu_convolution_weights_go_channels_last_on_x86_only():
    """SD's UNet/VAE and YOLO store conv weights channels-last on x86 CPUs with oneDNN (faster there); on a GPU
    device the call changes nothing."""
    import platform

    import pytest
    import torch

    from hub.device import cpu_channels_last

    conv = torch.nn.Conv2d(8, 8, 3)
    assert not cpu_channels_last("cuda", conv) and conv.weight.is_contiguous()
    if platform.machine() not in ("x86_64", "AMD64") or not torch.backends.mkldnn.is_available():
        pytest.skip("channels-last is applied on x86 CPUs with oneDNN only")
    assert cpu_channels_last("cpu", conv)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    x = torch.randn(1, 8, 16, 16)
    assert torch.allclose(conv(x), torch.nn.functional.conv2d(x, conv.weight.contiguous(), conv.bias), atol=1e-5)
