/*
 * muon-itest: integration test program (see itest.h for the roles).
 */
#include "itest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "pub") == 0)
		return pub_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "sub") == 0)
		return sub_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return driver_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "selftest") == 0)
		return selftest_main(argc - 1, argv + 1);
	fprintf(stderr,
		"usage: muon-itest pub|sub|run|selftest ...\n"
		"  muon-itest run SCENARIO --transport shm|tcp|...\n"
		"  muon-itest pub --help, muon-itest sub --help\n");
	return 2;
}
