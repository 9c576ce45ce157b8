/*
 * text.c
 *		Text signals of support tickets and survey comments: lexicon sentiment
 *		(cs.sentiment), tone indicators (cs.tone) and the input guard used by
 *		the rule-based categoriser (cs._text_prefix, behind cs.ticket_category).
 *
 * Sentiment follows the rules of VADER (Hutto & Gilbert, ICWSM 2014): each
 * word of the lexicon contributes its valence; up to three preceding words
 * that are not themselves in the lexicon may boost or dampen it ("very",
 * "slightly") or negate it ("not", "never", any "n't"); a word in capitals
 * among mixed-case words is emphasised; within a sentence, words before "but"
 * or "however" count half and words after it one and a half; exclamation
 * marks (up to four) and repeated question marks push the sum away from zero;
 * the sum s maps to s / sqrt(s^2 + 15), in (-1, 1).  Two departures: a
 * modifier never reaches across a comma, a sentence end or a "but" ("not
 * now, good work" and "nothing but problems" do not negate), and the
 * but-rule applies per sentence.
 *
 * The lexicon is models/vader_lexicon.tsv, then models/support_lexicon.tsv
 * (domain overrides, 0 removes a term), read from
 * SHAREDIR/cscopilot/models/ the first time a backend needs it, into one
 * open-addressing hash table in TopMemoryContext that also flags boosters and
 * negators, so a word costs one lookup.
 *
 * Input is processed in bytes: case folding is ASCII, other bytes are part of
 * words (emoji are lexicon terms).  Text whose bytes are not valid in the
 * database encoding (possible through convert_from(..., 'SQL_ASCII') and
 * similar) is rejected with SQLSTATE 22021.  Memory is bounded by one
 * sentence buffer whatever the length of the text, and long texts check for
 * interrupts.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "cscopilot.h"

PG_FUNCTION_INFO_V1(cs_sentiment);
PG_FUNCTION_INFO_V1(cs_tone);
PG_FUNCTION_INFO_V1(cs_text_prefix);

/* VADER's empirically derived constants. */
#define B_INCR		0.293		/* booster */
#define B_DECR		(-0.293)	/* dampener */
#define C_INCR		0.733		/* a word in capitals */
#define N_SCALAR	(-0.74)		/* negation */
#define EP_INCR		0.292		/* per exclamation mark, up to 4 */
#define NORM_ALPHA	15.0

/* Longest term looked up; longer words are never lexicon terms. */
#define MAX_TERM	63
/* Tokens scored together at most; a longer run without a sentence end is split. */
#define MAX_SENTENCE 256
/* Tokens between interrupt checks. */
#define INTERRUPT_EVERY 65536

/* Entry flags. */
#define LEX_VALENCE		0x01	/* has a (non-zero) valence */
#define LEX_PHRASE		0x02	/* first word of a two-word term */
#define LEX_BOOST_UP	0x04
#define LEX_BOOST_DOWN	0x08
#define LEX_NEGATOR		0x10

typedef struct LexEntry
{
	char	   *term;			/* NULL: empty slot */
	uint32		hash;
	uint8		len;
	uint8		flags;
	float4		valence;
} LexEntry;

typedef struct Lexicon
{
	LexEntry   *slots;
	uint32		mask;
	int			nterms;
} Lexicon;

static Lexicon *lexicon = NULL;

typedef struct Token
{
	char		lower[MAX_TERM + 1];	/* case-folded term, NUL-terminated */
	int			len;			/* its length; 0 when the word is too long */
	uint32		hash;
	bool		upper;			/* letters all in capitals */
	bool		clause_end;		/* followed by , ; : . ! or ? */
	bool		sentence_end;	/* followed by . ! or ? */
	const LexEntry *entry;
} Token;

/* VADER's negations; words containing "n't" count too. */
static const char *const NEGATORS[] = {
	"aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "dont", "hadnt",
	"hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "neednt", "never", "none", "nope",
	"nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "uh-uh", "wasnt",
	"werent", "without", "wont", "wouldnt", "rarely", "seldom", "despite", "no"
};

/* VADER's degree adverbs. */
static const char *const BOOSTERS_UP[] = {
	"absolutely", "amazingly", "awfully", "completely", "considerably", "decidedly", "deeply",
	"effing", "enormously", "entirely", "especially", "exceptionally", "extremely", "fabulously",
	"flipping", "flippin", "fricking", "frickin", "frigging", "friggin", "fully", "fucking",
	"greatly", "hella", "highly", "hugely", "incredibly", "intensely", "majorly", "more", "most",
	"particularly", "purely", "quite", "really", "remarkably", "so", "substantially", "thoroughly",
	"totally", "tremendously", "uber", "unbelievably", "unusually", "utterly", "very"
};
static const char *const BOOSTERS_DOWN[] = {
	"almost", "barely", "hardly", "kinda", "kindof", "kind-of", "less", "little", "marginally",
	"occasionally", "partly", "scarcely", "slightly", "somewhat", "sorta", "sortof", "sort-of"
};

/* FNV-1a over a term. */
static inline uint32
TermHash(const char *s, int len)
{
	uint32		h = 2166136261u;

	for (int i = 0; i < len; i++)
		h = (h ^ (uint8) s[i]) * 16777619u;
	return h;
}

/* The slot of a term: its entry, or the empty slot where it would go. */
static inline LexEntry *
LexSlot(const Lexicon *lex, const char *term, int len, uint32 hash)
{
	uint32		i = hash & lex->mask;

	for (;;)
	{
		LexEntry   *e = &lex->slots[i];

		if (e->term == NULL ||
			(e->hash == hash && e->len == len && memcmp(e->term, term, len) == 0))
			return e;
		i = (i + 1) & lex->mask;
	}
}

/* Adds flags (and a valence when LEX_VALENCE is among them) to a term. */
static void
LexPut(Lexicon *lex, const char *term, int len, uint8 flags, float4 valence)
{
	uint32		hash = TermHash(term, len);
	LexEntry   *e = LexSlot(lex, term, len, hash);

	if (e->term == NULL)
	{
		if ((uint32) (lex->nterms + 1) * 2 > lex->mask + 1)
			elog(ERROR, "sentiment lexicon table is full");
		e->term = pnstrdup(term, len);
		e->hash = hash;
		e->len = (uint8) len;
		lex->nterms++;
	}
	if (flags & LEX_VALENCE)
	{
		e->valence = valence;
		if (valence == 0)
			e->flags &= ~LEX_VALENCE;
		else
			e->flags |= LEX_VALENCE;
		flags &= ~LEX_VALENCE;
	}
	e->flags |= flags;
}

/* Reads one lexicon file (term TAB valence per line, # comments) into lex. */
static void
LexLoadFile(Lexicon *lex, const char *filename)
{
	char		sharepath[MAXPGPATH];
	char		path[MAXPGPATH];
	char		line[1024];
	FILE	   *f;
	int			lineno = 0;

	get_share_path(my_exec_path, sharepath);
	snprintf(path, sizeof(path), "%s/cscopilot/models/%s", sharepath, filename);
	f = AllocateFile(path, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open sentiment lexicon \"%s\": %m", path),
				 errhint("The lexicon is installed with the extension (make install); reinstall it.")));
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *tab;
		char	   *end;
		double		v;
		int			len;

		lineno++;
		if (line[0] == '#' || line[0] == '\n' || line[0] == '\0')
			continue;
		tab = strchr(line, '\t');
		len = tab ? (int) (tab - line) : 0;
		v = tab ? strtod(tab + 1, &end) : 0;
		if (tab == NULL || len == 0 || len > MAX_TERM || end == tab + 1 || !isfinite(v) ||
			v < -4.0 || v > 4.0)
		{
			FreeFile(f);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("invalid line %d in sentiment lexicon \"%s\"", lineno, path),
					 errdetail("Lines are a term of 1 to %d bytes, a tab and a valence between -4 and 4.",
							   MAX_TERM)));
		}
		for (int i = 0; i < len; i++)
			line[i] = pg_ascii_tolower((unsigned char) line[i]);
		LexPut(lex, line, len, LEX_VALENCE, (float4) v);
		/* a two-word term: flag its first word so the scorer tries the pair */
		{
			char	   *sp = memchr(line, ' ', len);

			if (sp != NULL && sp > line)
				LexPut(lex, line, (int) (sp - line), LEX_PHRASE, 0);
		}
	}
	if (ferror(f))
	{
		FreeFile(f);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read sentiment lexicon \"%s\": %m", path)));
	}
	FreeFile(f);
}

/* The lexicon, loaded on first use in this backend. */
static const Lexicon *
GetLexicon(void)
{
	MemoryContext cxt;
	MemoryContext old;
	Lexicon    *lex;

	if (lexicon != NULL)
		return lexicon;
	/* built in its own context, dropped if a file turns out bad */
	cxt = AllocSetContextCreate(TopMemoryContext, "cscopilot sentiment lexicon",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		lex = palloc0(sizeof(Lexicon));
		lex->mask = 16384 - 1;
		lex->slots = palloc0(sizeof(LexEntry) * (lex->mask + 1));
		LexLoadFile(lex, "vader_lexicon.tsv");
		LexLoadFile(lex, "support_lexicon.tsv");
		for (int i = 0; i < lengthof(NEGATORS); i++)
			LexPut(lex, NEGATORS[i], strlen(NEGATORS[i]), LEX_NEGATOR, 0);
		for (int i = 0; i < lengthof(BOOSTERS_UP); i++)
			LexPut(lex, BOOSTERS_UP[i], strlen(BOOSTERS_UP[i]), LEX_BOOST_UP, 0);
		for (int i = 0; i < lengthof(BOOSTERS_DOWN); i++)
			LexPut(lex, BOOSTERS_DOWN[i], strlen(BOOSTERS_DOWN[i]), LEX_BOOST_DOWN, 0);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	lexicon = lex;
	return lexicon;
}

/* The entry of a term, or NULL. */
static inline const LexEntry *
LexFind(const Lexicon *lex, const char *term, int len, uint32 hash)
{
	const LexEntry *e;

	if (len == 0)
		return NULL;
	e = LexSlot(lex, term, len, hash);
	return e->term ? e : NULL;
}

/* Rejects text whose bytes are not valid in the database encoding. */
static void
CheckEncoding(const char *s, int len)
{
	if (!pg_verifymbstr(s, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("text is not valid %s", GetDatabaseEncodingName()),
				 errhint("Convert the text with convert_from() from its real encoding first.")));
}

/* Whitespace and ASCII control characters separate words. */
static inline bool
IsSpace(unsigned char c)
{
	return c <= ' ' || c == 0x7F;
}

/* ASCII punctuation, as VADER strips it from word edges. */
static inline bool
IsPunct(unsigned char c)
{
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
		(c >= '{' && c <= '~');
}

/*
 * Reads the next token at *p: a whitespace-delimited word with punctuation
 * stripped from its edges (kept when that leaves at most one byte, so that
 * emoticons survive).  Returns false at the end of the text.  *kept is false
 * for one-byte tokens, which carry punctuation only.
 */
static bool
NextToken(const char **p, const char *end, Token *t, bool *kept)
{
	const char *s = *p;
	const char *e;
	const char *ws;
	const char *we;
	bool		has_upper = false;
	bool		has_lower = false;
	uint32		h = 2166136261u;
	int			n = 0;

	while (s < end && IsSpace((unsigned char) *s))
		s++;
	if (s >= end)
		return false;
	e = s;
	while (e < end && !IsSpace((unsigned char) *e))
		e++;
	*p = e;

	ws = s;
	we = e;
	while (ws < we && IsPunct((unsigned char) *ws))
		ws++;
	while (we > ws && IsPunct((unsigned char) we[-1]))
		we--;
	t->clause_end = false;
	t->sentence_end = false;
	for (const char *q = we; q < e; q++)
	{
		if (*q == '.' || *q == '!' || *q == '?')
			t->sentence_end = t->clause_end = true;
		else if (*q == ',' || *q == ';' || *q == ':')
			t->clause_end = true;
	}
	if (we - ws <= 1)
	{
		ws = s;
		we = e;
		t->clause_end = t->sentence_end = false;
	}
	*kept = (we - ws) > 1;

	for (const char *q = s; q < e; q++)
	{
		unsigned char c = (unsigned char) *q;

		if (c >= 'A' && c <= 'Z')
			has_upper = true;
		else if (c >= 'a' && c <= 'z')
			has_lower = true;
	}
	t->upper = has_upper && !has_lower;

	if (we - ws > MAX_TERM)
		n = 0;
	else
	{
		for (const char *q = ws; q < we; q++)
		{
			unsigned char c = (unsigned char) *q;

			/* a typographic apostrophe (U+2019) reads as ' */
			if (c == 0xE2 && we - q >= 3 && (unsigned char) q[1] == 0x80 && (unsigned char) q[2] == 0x99)
			{
				c = '\'';
				q += 2;
			}
			else if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			t->lower[n++] = (char) c;
			h = (h ^ c) * 16777619u;
		}
	}
	t->lower[n] = '\0';
	t->len = n;
	t->hash = h;
	t->entry = NULL;
	return true;
}

static inline bool
TokenIs(const Token *t, const char *word)
{
	return strcmp(t->lower, word) == 0;
}

static inline bool
TokenNegates(const Token *t)
{
	if (t->entry && (t->entry->flags & LEX_NEGATOR))
		return true;
	return t->len > 0 && strstr(t->lower, "n't") != NULL;
}

/* Sum of the (rule-adjusted) valences of one sentence. */
static double
ScoreSentence(const Lexicon *lex, Token *t, int n, bool cap_diff)
{
	double		v[MAX_SENTENCE];
	double		sum = 0;
	int			contrast = -1;
	bool		skip_next = false;

	for (int i = 0; i < n; i++)
	{
		const LexEntry *e = t[i].entry;
		double		val = 0;

		v[i] = 0;
		if (contrast < 0 && (TokenIs(&t[i], "but") || TokenIs(&t[i], "however")))
			contrast = i;
		if (skip_next)
		{
			skip_next = false;
			continue;
		}
		if (e == NULL)
			continue;
		if (e->flags & (LEX_BOOST_UP | LEX_BOOST_DOWN))
			continue;
		if (i + 1 < n && TokenIs(&t[i], "kind") && TokenIs(&t[i + 1], "of"))
			continue;
		if ((e->flags & LEX_PHRASE) && i + 1 < n && t[i + 1].len > 0 && !t[i].clause_end &&
			t[i].len + 1 + t[i + 1].len <= MAX_TERM)
		{
			char		pair[MAX_TERM + 1];
			int			plen = t[i].len + 1 + t[i + 1].len;
			const LexEntry *pe;

			memcpy(pair, t[i].lower, t[i].len);
			pair[t[i].len] = ' ';
			memcpy(pair + t[i].len + 1, t[i + 1].lower, t[i + 1].len);
			pe = LexFind(lex, pair, plen, TermHash(pair, plen));
			if (pe && (pe->flags & LEX_VALENCE))
			{
				val = pe->valence;
				skip_next = true;
			}
		}
		if (val == 0 && (e->flags & LEX_VALENCE))
			val = e->valence;
		if (val == 0)
			continue;
		/* "no" before a sentiment word only negates it */
		if (TokenIs(&t[i], "no") && i + 1 < n && t[i + 1].entry &&
			(t[i + 1].entry->flags & LEX_VALENCE))
			continue;
		if (t[i].upper && cap_diff)
			val += val > 0 ? C_INCR : -C_INCR;

		for (int k = 0; k < 3; k++)
		{
			int			j = i - k - 1;
			const LexEntry *pe;

			/* modifiers act within their clause: not across punctuation or a "but" */
			if (j < 0 || t[j].clause_end || TokenIs(&t[j], "but") || TokenIs(&t[j], "however"))
				break;
			pe = t[j].entry;
			/* a sentiment word does not modify its neighbour, unless it negates ("no") */
			if (pe && (pe->flags & LEX_VALENCE) && !(pe->flags & LEX_NEGATOR))
				continue;
			if (pe && (pe->flags & (LEX_BOOST_UP | LEX_BOOST_DOWN)))
			{
				double		s = (pe->flags & LEX_BOOST_UP) ? B_INCR : B_DECR;

				if (val < 0)
					s = -s;
				if (t[j].upper && cap_diff)
					s += val > 0 ? C_INCR : -C_INCR;
				val += s * (k == 0 ? 1.0 : k == 1 ? 0.95 : 0.9);
			}
			if (TokenNegates(&t[j]))
			{
				/* "never so good", "never this good": emphasis, not negation */
				if (k > 0 && TokenIs(&t[j], "never") &&
					(TokenIs(&t[j + 1], "so") || TokenIs(&t[j + 1], "this")))
					val *= k == 1 ? 1.5 : 1.25;
				else
					val *= N_SCALAR;
			}
		}
		/* "least good" negates, "at least good" does not */
		if (i > 0 && TokenIs(&t[i - 1], "least") && !t[i - 1].clause_end &&
			!(i > 1 && (TokenIs(&t[i - 2], "at") || TokenIs(&t[i - 2], "very"))))
			val *= N_SCALAR;
		v[i] = val;
	}
	for (int i = 0; i < n; i++)
	{
		if (contrast >= 0 && i < contrast)
			v[i] *= 0.5;
		else if (contrast >= 0 && i > contrast)
			v[i] *= 1.5;
		sum += v[i];
	}
	return sum;
}

/* Sentiment of text in [-1, 1]; 0 when no word carries any. */
static double
Sentiment(const char *s, int len)
{
	const Lexicon *lex = GetLexicon();
	const char *p;
	const char *end = s + len;
	Token	   *buf;
	Token		tok;
	bool		kept;
	int64		ntokens = 0;
	int64		nupper = 0;
	int			excl = 0;
	int			quest = 0;
	int			n = 0;
	bool		cap_diff;
	double		sum = 0;
	double		punct;

	/* first pass: capitals among the words, and punctuation */
	for (p = s; p < end; p++)
	{
		if (*p == '!')
			excl++;
		else if (*p == '?')
			quest++;
	}
	p = s;
	while (NextToken(&p, end, &tok, &kept))
	{
		if (!kept)
			continue;
		ntokens++;
		nupper += tok.upper;
		if ((ntokens & (INTERRUPT_EVERY - 1)) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	cap_diff = nupper > 0 && nupper < ntokens;

	/* second pass: score sentence by sentence */
	buf = palloc(sizeof(Token) * MAX_SENTENCE);
	p = s;
	ntokens = 0;
	while (NextToken(&p, end, &tok, &kept))
	{
		if (!kept)
		{
			/* a lone mark ends the previous word's clause or sentence */
			if (n > 0)
			{
				buf[n - 1].clause_end |= tok.clause_end || (tok.len == 1 && IsPunct((unsigned char) tok.lower[0]));
				if (tok.len == 1 && (tok.lower[0] == '.' || tok.lower[0] == '!' || tok.lower[0] == '?'))
				{
					sum += ScoreSentence(lex, buf, n, cap_diff);
					n = 0;
				}
			}
			continue;
		}
		tok.entry = LexFind(lex, tok.lower, tok.len, tok.hash);
		buf[n++] = tok;
		if (tok.sentence_end || n == MAX_SENTENCE)
		{
			sum += ScoreSentence(lex, buf, n, cap_diff);
			n = 0;
		}
		if ((++ntokens & (INTERRUPT_EVERY - 1)) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	if (n > 0)
		sum += ScoreSentence(lex, buf, n, cap_diff);
	pfree(buf);

	if (sum == 0)
		return 0;
	punct = Min(excl, 4) * EP_INCR;
	if (quest > 1)
		punct += quest <= 3 ? quest * 0.18 : 0.96;
	sum += sum > 0 ? punct : -punct;
	return sum / sqrt(sum * sum + NORM_ALPHA);
}

/* cs.sentiment(text): lexicon sentiment in [-1, 1]. */
Datum
cs_sentiment(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	CheckEncoding(s, len);
	PG_RETURN_FLOAT8(Sentiment(s, len));
}

/*
 * Tone cues: words and short phrases, each counted once per text.  A score is
 * 1 - exp(-sum of the weights of the cues found), in [0, 1).
 */
typedef struct ToneCue
{
	const char *words[4];		/* a phrase, NULL-terminated when shorter */
	double		weight;
} ToneCue;

static const ToneCue URGENCY_CUES[] = {
	{{"urgent"}, 1.0}, {{"urgently"}, 1.0}, {{"asap"}, 1.0}, {{"emergency"}, 1.0},
	{{"immediately"}, 0.8}, {{"critical"}, 0.7}, {{"blocker"}, 0.8}, {{"blocking"}, 0.6},
	{{"outage"}, 0.8}, {{"down"}, 0.4}, {{"escalate"}, 0.6}, {{"escalation"}, 0.6},
	{{"deadline"}, 0.5}, {{"today"}, 0.3}, {{"tonight"}, 0.3}, {{"production"}, 0.3},
	{{"right", "now"}, 0.6}, {{"as", "soon", "as", "possible"}, 1.0}, {{"time-sensitive"}, 0.8},
	{{"quickly"}, 0.3}
};

static const ToneCue ANGER_CUES[] = {
	{{"unacceptable"}, 1.0}, {{"ridiculous"}, 0.9}, {{"furious"}, 1.0}, {{"angry"}, 0.9},
	{{"outraged"}, 1.0}, {{"disgusted"}, 0.9}, {{"pathetic"}, 0.9}, {{"terrible"}, 0.6},
	{{"awful"}, 0.6}, {{"horrible"}, 0.6}, {{"worst"}, 0.7}, {{"useless"}, 0.7},
	{{"joke"}, 0.5}, {{"waste"}, 0.5}, {{"incompetent"}, 0.9}, {{"fed", "up"}, 0.9},
	{{"sick", "of"}, 0.8}, {{"third", "time"}, 0.5}, {{"still", "waiting"}, 0.5},
	{{"again"}, 0.2}, {{"wtf"}, 1.0}, {{"annoyed"}, 0.6}, {{"frustrated"}, 0.6},
	{{"frustrating"}, 0.6}
};

static const ToneCue POLITENESS_CUES[] = {
	{{"please"}, 0.6}, {{"thanks"}, 0.8}, {{"thank"}, 0.8}, {{"thx"}, 0.5},
	{{"appreciate"}, 0.8}, {{"appreciated"}, 0.8}, {{"kindly"}, 0.6}, {{"grateful"}, 0.8},
	{{"sorry"}, 0.4}, {{"apologies"}, 0.4}, {{"would", "you"}, 0.4}, {{"could", "you"}, 0.4},
	{{"hi"}, 0.3}, {{"hello"}, 0.3}, {{"dear"}, 0.3}, {{"regards"}, 0.4}, {{"cheers"}, 0.3},
	{{"best", "wishes"}, 0.4}
};

#define MAX_CUES_SHOWN 32
#define MAX_TONE_CUES 32

StaticAssertDecl(lengthof(URGENCY_CUES) <= MAX_TONE_CUES && lengthof(ANGER_CUES) <= MAX_TONE_CUES &&
				 lengthof(POLITENESS_CUES) <= MAX_TONE_CUES, "too many tone cues");

typedef struct ToneScore
{
	const ToneCue *cues;
	int			ncues;
	bool		found[MAX_TONE_CUES];
	double		extra;			/* from punctuation, capitals, sentiment */
	const char *extra_cues[3];
	int			nextra;
} ToneScore;

/* Marks the cues that end at the current token (last[0]; last[1] the one before...). */
static void
ToneMatch(ToneScore *ts, Token *const *last, int nlast)
{
	for (int c = 0; c < ts->ncues; c++)
	{
		const ToneCue *cue = &ts->cues[c];
		int			w = 0;
		bool		match = true;

		if (ts->found[c])
			continue;
		while (w < 4 && cue->words[w] != NULL)
			w++;
		if (w > nlast)
			continue;
		for (int k = 0; k < w && match; k++)
		{
			const Token *t = last[w - 1 - k];

			/* a phrase does not span a clause break */
			match = strcmp(t->lower, cue->words[k]) == 0 && (k == w - 1 || !t->clause_end);
		}
		if (match)
			ts->found[c] = true;
	}
}

/* The score of one indicator. */
static double
ToneValue(const ToneScore *ts)
{
	double		sum = ts->extra;

	for (int c = 0; c < ts->ncues; c++)
		if (ts->found[c])
			sum += ts->cues[c].weight;
	return 1.0 - exp(-sum);
}

/* Appends the cue list of one indicator, in the table's order. */
static void
ToneCueList(StringInfo out, const ToneScore *ts)
{
	bool		first = true;
	int			shown = 0;

	appendStringInfoChar(out, '[');
	for (int c = 0; c < ts->ncues && shown < MAX_CUES_SHOWN; c++)
	{
		if (!ts->found[c])
			continue;
		appendStringInfoString(out, first ? "\"" : ", \"");
		for (int w = 0; w < 4 && ts->cues[c].words[w]; w++)
		{
			if (w > 0)
				appendStringInfoChar(out, ' ');
			appendStringInfoString(out, ts->cues[c].words[w]);
		}
		appendStringInfoChar(out, '"');
		first = false;
		shown++;
	}
	for (int x = 0; x < ts->nextra; x++)
	{
		appendStringInfo(out, "%s\"%s\"", first ? "" : ", ", ts->extra_cues[x]);
		first = false;
	}
	appendStringInfoChar(out, ']');
}

/* cs.tone(text): urgency, anger and politeness in [0, 1] with the cues found. */
Datum
cs_tone(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	const char *p;
	const char *end = s + len;
	Token		ring[4];
	Token	   *last[4];
	int			nlast = 0;
	int			head = 0;
	Token		tok;
	bool		kept;
	int			excl = 0;
	int			caps_words = 0;
	int			caps_run = 0;
	int			caps_pending = 0;	/* capitalised words of the run not counted yet */
	int64		ntokens = 0;
	double		sentiment;
	const Lexicon *lex;
	ToneScore	urgency = {URGENCY_CUES, lengthof(URGENCY_CUES)};
	ToneScore	anger = {ANGER_CUES, lengthof(ANGER_CUES)};
	ToneScore	polite = {POLITENESS_CUES, lengthof(POLITENESS_CUES)};
	StringInfoData out;

	CheckEncoding(s, len);
	sentiment = Sentiment(s, len);
	lex = GetLexicon();
	for (p = s; p < end; p++)
		if (*p == '!')
			excl++;

	p = s;
	while (NextToken(&p, end, &tok, &kept))
	{
		if (!kept)
			continue;
		/*
		 * Shouting: a word in capitals that the lexicon knows ("URGENT",
		 * "NOTHING"), or three capitalised words in a row.  Acronyms alone
		 * ("API", "SSO", "CSV") are not shouting.
		 */
		if (tok.upper && tok.len >= 2)
		{
			caps_run++;
			if (LexFind(lex, tok.lower, tok.len, tok.hash) != NULL)
				caps_words++;
			else
				caps_pending++;
			if (caps_run >= 3)
			{
				caps_words += caps_pending;
				caps_pending = 0;
			}
		}
		else
			caps_run = caps_pending = 0;
		ring[head] = tok;
		for (int k = 0; k < 4; k++)
			last[k] = &ring[(head - k + 4) & 3];
		head = (head + 1) & 3;
		nlast = Min(nlast + 1, 4);
		ToneMatch(&urgency, last, nlast);
		ToneMatch(&anger, last, nlast);
		ToneMatch(&polite, last, nlast);
		if ((++ntokens & (INTERRUPT_EVERY - 1)) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	if (excl > 0)
	{
		urgency.extra += 0.15 * Min(excl, 4);
		urgency.extra_cues[urgency.nextra++] = "exclamation";
	}
	if (excl >= 2)
	{
		anger.extra += 0.3;
		anger.extra_cues[anger.nextra++] = "exclamation";
	}
	/* a text all in capitals is a style, a few capitalised words are shouting */
	if (caps_words > 0 && caps_words < ntokens)
	{
		anger.extra += 0.3 * Min(caps_words, 3);
		anger.extra_cues[anger.nextra++] = "capitals";
	}
	if (sentiment <= -0.1)
	{
		anger.extra += -sentiment;
		anger.extra_cues[anger.nextra++] = "negative sentiment";
	}

	initStringInfo(&out);
	appendStringInfo(&out, "{\"urgency\": %.3f, \"anger\": %.3f, \"politeness\": %.3f, \"cues\": {\"urgency\": ",
					 ToneValue(&urgency), ToneValue(&anger), ToneValue(&polite));
	ToneCueList(&out, &urgency);
	appendStringInfoString(&out, ", \"anger\": ");
	ToneCueList(&out, &anger);
	appendStringInfoString(&out, ", \"politeness\": ");
	ToneCueList(&out, &polite);
	appendStringInfoString(&out, "}}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

/* cs._text_prefix(text, max_bytes): the text checked for encoding, cut to whole characters. */
Datum
cs_text_prefix(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int32		max_bytes = PG_GETARG_INT32(1);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (max_bytes < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_bytes must not be negative")));
	CheckEncoding(s, len);
	if (len <= max_bytes)
		PG_RETURN_TEXT_P(t);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(s, pg_mbcliplen(s, len, max_bytes)));
}
