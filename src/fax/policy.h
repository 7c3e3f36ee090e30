/* SPDX-License-Identifier: ISC */
/* policy.h -- when a fax job is tried again, and when it is given up */
#ifndef TR_FAX_POLICY_H
#define TR_FAX_POLICY_H

/*
 * The retry rules follow HylaFAX's defaults: BUSY is tried again after 3
 * minutes, NO ANSWER after 5, NO CARRIER once more after 5 and then the
 * job fails (a number answered by no fax is likely wrong), a T.30 failure
 * after 1 minute; at most 12 dials and 3 calls a fax answered; 3 hours
 * after the job was queued it is killed. A wrong CSI fails at once: the
 * number reached a fax that is not the provider's. A fault of the modem
 * itself (device missing, no answer to AT) is not the job's: it waits for
 * modem_retry and counts no dial. Every delay is spread by +-jitter
 * percent so that jobs that failed together do not redial together. A
 * retry that would come after the kill time fails the job at once.
 */

#include <stdint.h>

#include "fax/class1.h"

struct fax_policy {
	uint32_t busy_s;	/* 180 */
	uint32_t no_answer_s;	/* 300 */
	uint32_t no_carrier_s;	/* 300 */
	uint32_t protocol_s;	/* 60: T.30 failures, a rejected page */
	uint32_t modem_s;	/* 60: the modem failed, not the call */
	uint32_t max_dials;	/* 12 */
	uint32_t max_tries;	/* 3: calls a fax answered */
	uint32_t max_no_carrier; /* 2 */
	uint32_t kill_s;	/* 10800 */
	uint32_t jitter_pct;	/* 20; 0..50 */
};

/* The defaults above. */
void fax_policy_defaults(struct fax_policy *p);

/* A job's counters, as kept in its outbox_fax record. */
struct fax_job_counts {
	uint64_t created_ms;	/* when the job was queued (kill time) */
	uint32_t dials;
	uint32_t tries;
	uint32_t no_carrier;
};

/* One call's outcome, as the modem reported it. */
struct fax_call_outcome {
	enum class1_result result;
	bool dialed;
	bool carrier;
	bool modem_fault;
	size_t pages;		/* confirmed by the receiver */
	size_t pages_wanted;
};

enum fax_verdict {
	FAX_VERDICT_SENT,	/* every page confirmed */
	FAX_VERDICT_RETRY,	/* queue again until *ret_next_ms */
	FAX_VERDICT_FAIL,	/* give up: *ret_why says which rule */
};

/*
 * Count the call into C and decide. rnd is a uniform random 32-bit value
 * for the jitter. *ret_why is a static string ("busy", "too many dials",
 * "kill time", ...).
 */
enum fax_verdict fax_policy_decide(const struct fax_policy *p,
    struct fax_job_counts *c, const struct fax_call_outcome *o,
    uint64_t now_ms, uint32_t rnd, uint64_t *ret_next_ms,
    const char **ret_why);

/* Is a job queued at created_ms past its kill time at now_ms? */
bool fax_policy_killed(const struct fax_policy *p, uint64_t created_ms,
    uint64_t now_ms);

/* delay_s * 1000, spread by +-jitter_pct percent with rnd. */
uint64_t fax_policy_jitter(const struct fax_policy *p, uint32_t delay_s,
    uint32_t rnd);

#endif
