from hub.device import choose, cpu_info, probe_kind


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


# ---- the CPU: bf16 where the CPU computes it natively and the model gains from it -------------------------------


def test_cpu_runs_bf16_only_for_models_that_gain_and_only_on_cpus_with_native_bf16():
    assert choose("cpu", cpu_bf16=True, cpu_prefers="bfloat16").dtype == "bfloat16"
    assert choose("cpu", cpu_bf16=False, cpu_prefers="bfloat16").dtype == "float32"  # e.g. an AVX2-only CPU
    assert choose("cpu", cpu_bf16=True).dtype == "float32"  # a model that measured no gain stays fp32
    assert choose(cpu_bf16=True, cpu_prefers="bfloat16", cuda=True).dtype == "float16"  # GPUs keep their rule


def test_the_operators_dtype_overrides_the_cpu_policy_and_an_impossible_one_says_why():
    assert choose("cpu", "float32", cpu_bf16=True, cpu_prefers="bfloat16").dtype == "float32"  # DEMOHUB_DTYPE
    assert choose("cpu", "bfloat16", cpu_bf16=True).dtype == "bfloat16"
    p = choose("cpu", "bfloat16", cpu_bf16=False)
    assert p.dtype == "float32" and "no native bfloat16" in p.reason and "float32" in p.reason
    p = choose("cpu", "float16", cpu_bf16=True)
    assert p.dtype == "float32" and "float16 was asked for" in p.reason


INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
AMD_ZEN3 = "model name\t: AMD EPYC 7R13 Processor\nflags\t\t: fpu sse2 avx avx2 fma\n"
ARM = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes sha1 sha2 crc32 bf16 i8mm\n"


def test_cpu_info_reads_the_name_and_the_flags_that_matter_from_what_the_cpu_reports():
    intel = cpu_info(INTEL)
    assert intel["name"] == "Intel(R) Xeon(R) Platinum 8488C" and intel["bf16"]
    assert intel["flags"] == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    zen3 = cpu_info(AMD_ZEN3)
    assert zen3["name"] == "AMD EPYC 7R13 Processor" and not zen3["bf16"] and zen3["flags"] == ["avx2"]
    arm = cpu_info(ARM)
    assert arm["bf16"] and arm["flags"] == ["bf16", "i8mm"]
    assert cpu_info("")["bf16"] is False  # no /proc/cpuinfo (macOS, Windows): fp32
