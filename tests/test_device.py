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
