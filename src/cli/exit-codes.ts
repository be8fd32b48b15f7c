/** The CLI's exit codes (README "The CLI"): what a script can branch on. */
export const EXIT = { ok: 0, notApplied: 1, usage: 2, failure: 3, manual: 4, busy: 5 } as const;
