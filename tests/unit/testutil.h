/* testutil.h - small helpers shared by the unit suites. */
#ifndef EKYCFS_TESTUTIL_H
#define EKYCFS_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int testutil_remove_one(const char *path, const struct stat *st, int flag,
			       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the tree at dir (a suite's temporary directory); 0 or -1. */
static inline int rm_tree(const char *dir)
{
	return nftw(dir, testutil_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
