/* Preloaded into a process, makes its CPU report fewer instruction sets, so the kernels libraries pick
 * from cpuid (ONNX Runtime's MLAS, oneDNN, MKL, torch's cpuinfo) are the ones an older CPU runs, at this
 * CPU's real speed. The kernel's cpuid faulting (arch_prctl ARCH_SET_CPUID, flag `cpuid_fault` in
 * /proc/cpuinfo) turns every cpuid into a SIGSEGV; the handler runs the real cpuid, clears the masked
 * bits and steps over the instruction. benchmarks/masked_cpu.py builds and preloads it.
 *
 * CPU_MASK=avx2    no AVX-512, no AVX-VNNI, no AMX: an AVX2-only CPU (Haswell to Zen 3)
 * CPU_MASK=avx512  AVX-512 F/CD/BW/DQ/VL without VNNI, BF16, FP16 or AMX: Skylake-SP, Cascade Lake's
 *                  predecessor
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* cpuid leaf 7, subleaf 0. EBX: AVX-512 F DQ IFMA PF ER CD BW VL; the base set is F DQ CD BW VL. */
static const uint32_t AVX512_EBX = BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
static const uint32_t AVX512_BASE_EBX = BIT(16) | BIT(17) | BIT(28) | BIT(30) | BIT(31);
/* ECX: VBMI VBMI2 VNNI BITALG VPOPCNTDQ. EDX: 4VNNIW 4FMAPS VP2INTERSECT FP16; AMX BF16 TILE INT8. */
static const uint32_t AVX512_ECX = BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14);
static const uint32_t AVX512_EDX = BIT(2) | BIT(3) | BIT(8) | BIT(23);
static const uint32_t AMX_EDX = BIT(22) | BIT(24) | BIT(25);
/* cpuid leaf 7, subleaf 1. EAX: AVX-VNNI AVX512-BF16 AMX-FP16 AVX-IFMA.
 * EDX: AVX-VNNI-INT8 AVX-NE-CONVERT AMX-COMPLEX AVX-VNNI-INT16 AVX10. */
static const uint32_t VNNI_BF16_EAX = BIT(4) | BIT(5) | BIT(21) | BIT(23);
static const uint32_t VNNI_EDX = BIT(4) | BIT(5) | BIT(8) | BIT(10) | BIT(19);

static int keep_avx512_base;

static long allow_cpuid(int allowed) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, allowed); }

static void real_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]) {
    __asm__ volatile("cpuid" : "=a"(out[0]), "=b"(out[1]), "=c"(out[2]), "=d"(out[3]) : "a"(leaf), "c"(subleaf));
}

static void mask(uint32_t leaf, uint32_t subleaf, uint32_t r[4]) {
    if (leaf == 7 && subleaf == 0) {
        r[1] &= ~(keep_avx512_base ? AVX512_EBX & ~AVX512_BASE_EBX : AVX512_EBX);
        r[2] &= ~AVX512_ECX;
        r[3] &= ~(AVX512_EDX | AMX_EDX);
    } else if (leaf == 7 && subleaf == 1) {
        r[0] &= ~VNNI_BF16_EAX;
        r[3] &= ~VNNI_EDX;
    } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) { /* AMX tile and AVX10 leaves */
        r[0] = r[1] = r[2] = r[3] = 0;
    }
}

static void on_fault(int signal_number, siginfo_t *info, void *context) {
    (void)info;
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    const unsigned char *instruction = (const unsigned char *)regs[REG_RIP];
    if (instruction[0] != 0x0f || instruction[1] != 0xa2) {
        /* A real fault: back to the default action, which the re-executed instruction then takes. */
        signal(signal_number, SIG_DFL);
        return;
    }
    uint32_t leaf = (uint32_t)regs[REG_RAX], subleaf = (uint32_t)regs[REG_RCX], r[4];
    allow_cpuid(1);
    real_cpuid(leaf, subleaf, r);
    allow_cpuid(0);
    mask(leaf, subleaf, r);
    regs[REG_RAX] = r[0];
    regs[REG_RBX] = r[1];
    regs[REG_RCX] = r[2];
    regs[REG_RDX] = r[3];
    regs[REG_RIP] += 2;
}

__attribute__((constructor)) static void start_masking(void) {
    const char *level = getenv("CPU_MASK");
    if (level == NULL || strcmp(level, "none") == 0)
        return;
    if (strcmp(level, "avx512") == 0)
        keep_avx512_base = 1;
    else if (strcmp(level, "avx2") != 0) {
        fprintf(stderr, "cpu_mask: CPU_MASK=%s: expected avx2, avx512 or none\n", level);
        _exit(2);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &action, NULL);
    if (allow_cpuid(0) != 0) {
        perror("cpu_mask: arch_prctl(ARCH_SET_CPUID) (this CPU or kernel has no cpuid faulting)");
        _exit(2);
    }
}
