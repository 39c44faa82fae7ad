/*
 * processprng.c - a stand-in bcryptprimitives.dll for Wine 8.
 *
 * Rust's standard library for *-pc-windows-gnu (Rust >= 1.78) imports
 * ProcessPrng from bcryptprimitives.dll, which Debian's Wine 8.0 does not
 * have: every Rust program would exit with code 53 at start-up. This DLL
 * exports ProcessPrng and fills the buffer with RtlGenRandom
 * (SystemFunction036 of advapi32). Test-only; never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
