/* SPDX-License-Identifier: ISC */
/* ctl.c -- the control command table */
#include <string.h>

#include "ctl/ctl.h"
#include "common/macro.h"

const struct ctl_cmd_info ctl_cmds[CTL__COUNT] = {
	[CTL_STATUS] = { "status", "",
	    "version, uptime, connections, counts, store use", CTL_F_READONLY },
	[CTL_PROVIDER_ADD] = { "provider add",
	    "ID --name NAME --email ADDR --fax +E164",
	    "register a provider", 0 },
	[CTL_PROVIDER_LIST] = { "provider list", "",
	    "list providers", CTL_F_READONLY },
	[CTL_PROVIDER_SHOW] = { "provider show", "ID",
	    "show one provider and its services", CTL_F_READONLY },
	[CTL_PROVIDER_DISABLE] = { "provider disable", "ID",
	    "disable a provider: its services leave the catalog", 0 },
	[CTL_SERVICE_ADD] = { "service add",
	    "ID --provider P --category C --name N --price MINOR --currency CUR"
	    " [--description D]",
	    "add a service", 0 },
	[CTL_SERVICE_UPDATE] = { "service update",
	    "ID [--provider P] [--category C] [--name N] [--price MINOR]"
	    " [--currency CUR] [--description D] [--active yes|no]",
	    "change fields of a service", 0 },
	[CTL_SERVICE_REMOVE] = { "service remove", "ID",
	    "remove a service", 0 },
	[CTL_SERVICE_LIST] = { "service list",
	    "[--provider P] [--category C]",
	    "list services, inactive ones included", CTL_F_READONLY },
	[CTL_CATALOG_IMPORT] = { "catalog import", "FILE",
	    "load providers and services from JSON Lines, all or nothing", 0 },
};

int
ctl_cmd_lookup(int argc, char *const *argv, int *ret_words)
{
	for (size_t i = 0; i < ELEMENTSOF(ctl_cmds); i++) {
		const char *name = ctl_cmds[i].name;
		int w = 0;
		const char *p = name;

		while (*p != '\0' && w < argc) {
			size_t n = strcspn(p, " ");
			if (strlen(argv[w]) != n || strncmp(argv[w], p, n) != 0)
				break;
			w++;
			p += n;
			if (*p == ' ')
				p++;
		}
		if (*p == '\0' && w > 0) {
			*ret_words = w;
			return (int)i;
		}
	}
	return -1;
}
