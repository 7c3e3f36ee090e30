/* SPDX-License-Identifier: ISC */
/* policy.c -- when a fax job is tried again, and when it is given up */
#include <stdbool.h>
#include <stddef.h>

#include "fax/policy.h"

void
fax_policy_defaults(struct fax_policy *p)
{
	*p = (struct fax_policy){
		.busy_s = 180,
		.no_answer_s = 300,
		.no_carrier_s = 300,
		.protocol_s = 60,
		.modem_s = 60,
		.max_dials = 12,
		.max_tries = 3,
		.max_no_carrier = 2,
		.kill_s = 3 * 3600,
		.jitter_pct = 20,
	};
}

uint64_t
fax_policy_jitter(const struct fax_policy *p, uint32_t delay_s, uint32_t rnd)
{
	uint64_t base = (uint64_t)delay_s * 1000;
	uint32_t pct = p->jitter_pct > 50 ? 50 : p->jitter_pct;
	uint64_t span = base * pct / 100;

	if (span == 0)
		return base;
	/* base - span .. base + span */
	return base - span + (uint64_t)rnd % (2 * span + 1);
}

bool
fax_policy_killed(const struct fax_policy *p, uint64_t created_ms,
    uint64_t now_ms)
{
	return now_ms >= created_ms &&
	    now_ms - created_ms >= (uint64_t)p->kill_s * 1000;
}

enum fax_verdict
fax_policy_decide(const struct fax_policy *p, struct fax_job_counts *c,
    const struct fax_call_outcome *o, uint64_t now_ms, uint32_t rnd,
    uint64_t *ret_next_ms, const char **ret_why)
{
	uint32_t delay_s;

	if (o->dialed)
		c->dials++;
	if (o->carrier)
		c->tries++;
	if (o->result == CLASS1_OK && o->pages >= o->pages_wanted &&
	    o->pages > 0) {
		*ret_why = "sent";
		return FAX_VERDICT_SENT;
	}
	if (o->result == CLASS1_WRONG_RECIPIENT) {
		*ret_why = "wrong recipient";
		return FAX_VERDICT_FAIL;
	}

	if (o->modem_fault && !o->dialed) {
		delay_s = p->modem_s;
		*ret_why = "modem";
	} else {
		switch (o->result) {
		case CLASS1_BUSY:
			delay_s = p->busy_s;
			*ret_why = "busy";
			break;
		case CLASS1_NO_ANSWER:
		case CLASS1_NO_DIALTONE:
			delay_s = p->no_answer_s;
			*ret_why = "no answer";
			break;
		case CLASS1_NO_CARRIER:
			c->no_carrier++;
			delay_s = p->no_carrier_s;
			*ret_why = "no carrier";
			break;
		case CLASS1_TIMEOUT:
		case CLASS1_MODEM_ERROR:
			/* After the dial: the line or the far end. */
			delay_s = o->carrier ? p->protocol_s : p->no_answer_s;
			*ret_why = o->carrier ? "protocol" : "no answer";
			break;
		case CLASS1_OK: /* finished, yet a page is unconfirmed */
		case CLASS1_TRAINING_FAILED:
		case CLASS1_PAGE_REJECTED:
		case CLASS1_PROTOCOL_ERROR:
		case CLASS1_RUNNING:
		case CLASS1_WRONG_RECIPIENT:
		default:
			delay_s = p->protocol_s;
			*ret_why = "protocol";
			break;
		}
		if (c->no_carrier >= p->max_no_carrier &&
		    o->result == CLASS1_NO_CARRIER) {
			*ret_why = "no carrier again";
			return FAX_VERDICT_FAIL;
		}
		if (c->dials >= p->max_dials) {
			*ret_why = "too many dials";
			return FAX_VERDICT_FAIL;
		}
		if (c->tries >= p->max_tries) {
			*ret_why = "too many tries";
			return FAX_VERDICT_FAIL;
		}
	}
	*ret_next_ms = now_ms + fax_policy_jitter(p, delay_s, rnd);
	if (fax_policy_killed(p, c->created_ms, *ret_next_ms)) {
		*ret_why = "kill time";
		return FAX_VERDICT_FAIL;
	}
	return FAX_VERDICT_RETRY;
}
