package app

import "golang.org/x/sys/cpu"

// hostCPUBF16 reports whether this machine's CPU has bf16 matrix units
// (AVX512-BF16 or AMX-BF16): the test the trainer makes for itself
// (trainer/brightrun_trainer/models.py, cpu_bf16_supported) before it keeps
// a CPU job's frozen weights in bf16. The embedded default's local agent runs
// on this machine, so its catalog option is sized by it.
func hostCPUBF16() bool { return cpu.X86.HasAVX512BF16 || cpu.X86.HasAMXBF16 }
