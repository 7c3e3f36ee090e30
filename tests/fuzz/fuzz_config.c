/* SPDX-License-Identifier: ISC */
/* fuzz_config.c -- libFuzzer target: the configuration file parser */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is a config file. It loads or is refused with a message of
 * the form "FILE:LINE: ..." or "FILE: ..."; a refused load leaves the
 * configuration at its defaults; config_finish on what loaded either
 * succeeds or explains itself. Never a crash, a leak or a read past the
 * input.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct config cfg, def;
	struct config_err err;
	int r;

	if (size > 64 * 1024)
		return 0;
	if (fd < 0) {
		fd = memfd_create("fuzz-config", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();

	if (config_defaults(&cfg) < 0 || config_defaults(&def) < 0)
		abort();
	memset(err.msg, 0, sizeof(err.msg));
	r = config_load(&cfg, path, &err);
	if (r < 0) {
		/* A reason naming the file, and nothing applied. */
		if (strncmp(err.msg, path, strlen(path)) != 0 ||
		    strlen(err.msg) <= strlen(path))
			abort();
		if (strcmp(cfg.state_dir, def.state_dir) != 0 ||
		    cfg.map_size != def.map_size ||
		    cfg.client_max_frame != def.client_max_frame)
			abort();
	} else {
		memset(err.msg, 0, sizeof(err.msg));
		r = config_finish(&cfg, &err);
		if (r < 0 && err.msg[0] == '\0')
			abort();
		if (r == 0 && (cfg.store_path == NULL || cfg.store_path[0] == '\0'))
			abort();
	}
	config_free(&cfg);
	config_free(&def);
	return 0;
}
