/*
 * A stand-in for Windows 10's bcryptprimitives.dll, which Debian's wine 8.0
 * lacks and Go >= 1.22 loads at start (runtime: ProcessPrng, its source of
 * random bytes). test.sh builds it with mingw-w64 into a throw-away wine
 * prefix so that tapwire's Windows test binaries run under wine. It is not
 * part of tapwire and never ships.
 */
#include <windows.h>
#include <bcrypt.h>

/* ProcessPrng fills buf with len random bytes from the system's RNG. */
BOOL WINAPI ProcessPrng(PBYTE buf, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (BCryptGenRandom(NULL, buf, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
			return FALSE;
		buf += n;
		len -= n;
	}
	return TRUE;
}
