/*
 * The cluster secret and the authentication tags made with it. The secret
 * file's bytes are hashed into a 32-byte key, so any length of at least 16
 * bytes works (a line of `openssl rand -hex 32` or raw random bytes). Tags
 * are HMAC-SHA256 truncated to 128 bits, compared in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/muoni.h"

#define SECRET_MIN 16
#define SECRET_MAX 4096

void muoni_secret_wipe(void *p, size_t n)
{
	sodium_memzero(p, n);
}

int muoni_secret_load(const char *path, uint8_t key[32])
{
	uint8_t buf[SECRET_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, rc = 0;

	if (sodium_init() < 0)
		return MUONI_ERR(MUON_EIO, "libsodium failed to initialise");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT
			       ? MUONI_ERR(MUON_ENOTFOUND, "secret file %s does "
					   "not exist", path)
			       : MUONI_ERR_ERRNO("open secret file %s", path);
	if (fstat(fd, &st)) {
		rc = MUONI_ERR_ERRNO("fstat %s", path);
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = MUONI_ERR(MUON_ECONFIG, "secret file %s is not a regular "
			       "file", path);
		goto out_close;
	}
	/* Like ssh with private keys: a secret others can read is not one. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = MUONI_ERR(MUON_ECONFIG, "secret file %s is accessible by "
			       "group or others (mode %03o): chmod 600 it",
			       path, (unsigned)(st.st_mode & 0777));
		goto out_close;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = MUONI_ERR_ERRNO("read %s", path);
			goto out_wipe;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	/* A trailing newline is not part of a secret typed into a file. */
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len < SECRET_MIN || len > SECRET_MAX) {
		rc = MUONI_ERR(MUON_ECONFIG, "secret file %s holds %zu bytes: "
			       "want %d to %d", path, len, SECRET_MIN,
			       SECRET_MAX);
		goto out_wipe;
	}
	crypto_hash_sha256(key, buf, len);
out_wipe:
	sodium_memzero(buf, sizeof(buf));
out_close:
	close(fd);
	return rc;
}

void muoni_auth_tag(const uint8_t key[32], const void *msg, size_t len,
		    uint8_t tag[16])
{
	uint8_t full[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, 32);
	crypto_auth_hmacsha256_update(&st, msg, len);
	crypto_auth_hmacsha256_final(&st, full);
	memcpy(tag, full, 16);
	sodium_memzero(full, sizeof(full));
	sodium_memzero(&st, sizeof(st));
}

bool muoni_auth_verify(const uint8_t key[32], const void *msg, size_t len,
		       const uint8_t tag[16])
{
	uint8_t want[16];
	bool ok;

	muoni_auth_tag(key, msg, len, want);
	ok = sodium_memcmp(want, tag, 16) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}
