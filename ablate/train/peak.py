"""The device's peak FLOP/s, to state achieved FLOP/s as a fraction of it (model FLOPs utilisation).

Dense (no structured sparsity) tensor-core peaks from NVIDIA's datasheets, per device and dtype. fp32 matmuls
run on TF32 tensor cores when torch allows it (torch.set_float32_matmul_precision "high"/"medium"), else on the
plain fp32 units. An unknown device, a CPU, or a dtype the table lacks gives None: no fraction, never a guess.
"""

from __future__ import annotations

from typing import Optional

TERA = 1e12

# (substring of torch.cuda.get_device_name, most specific first) -> dtype -> peak FLOP/s
PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"fp32": 51 * TERA, "tf32": 378 * TERA, "bf16": 756 * TERA, "fp16": 756 * TERA}),
    ("H100 NVL", {"fp32": 60 * TERA, "tf32": 417.5 * TERA, "bf16": 835.5 * TERA, "fp16": 835.5 * TERA}),
    ("H100", {"fp32": 67 * TERA, "tf32": 494.7 * TERA, "bf16": 989.4 * TERA, "fp16": 989.4 * TERA}),  # SXM
    ("H200 NVL", {"fp32": 60 * TERA, "tf32": 417.5 * TERA, "bf16": 835.5 * TERA, "fp16": 835.5 * TERA}),
    ("H200", {"fp32": 67 * TERA, "tf32": 494.7 * TERA, "bf16": 989.4 * TERA, "fp16": 989.4 * TERA}),  # SXM
    ("A100", {"fp32": 19.5 * TERA, "tf32": 156 * TERA, "bf16": 312 * TERA, "fp16": 312 * TERA}),
)


def peak_flops(device_name: Optional[str], dtype: str) -> Optional[float]:
    """Peak FLOP/s of one device of this name at dtype (fp32 | tf32 | bf16 | fp16); None where unknown."""
    if not device_name:
        return None
    for key, peaks in PEAKS:
        if key.lower() in device_name.lower():
            return peaks.get(dtype)
    return None


def matmul_dtype(precision: str, float32_matmul: str = "highest") -> Optional[str]:
    """The dtype the matmuls of a Lightning precision ("bf16-mixed", "16-true", "32-true", ...) run in;
    float32_matmul: torch.get_float32_matmul_precision() (anything but "highest" lets fp32 use TF32)."""
    p = str(precision)
    if p.startswith("bf16"):
        return "bf16"
    if p.startswith("16"):
        return "fp16"
    if p.startswith("32"):
        return "fp32" if float32_matmul == "highest" else "tf32"
    return None  # 64-bit, transformer-engine fp8, ...: not in the table


def utilization(flops_per_s: Optional[float], device_name: Optional[str], precision: str, devices: int = 1,
                float32_matmul: str = "highest") -> dict[str, Optional[float]]:
    """result.json's peak fields: the peak of all `devices` together and achieved / peak (None where unknown)."""
    dtype = matmul_dtype(precision, float32_matmul)
    one = peak_flops(device_name, dtype) if dtype else None
    peak = one * devices if one else None
    return {"peak_flops_per_s": peak,
            "flops_utilization": flops_per_s / peak if peak and flops_per_s is not None else None}
