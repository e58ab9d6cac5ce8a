"""A deterministic corpus of tweet-like texts labelled Neutral / Negative / Positive.

Generated from templates rather than downloaded, so the demo model builds offline and the
same seed always yields the same texts. Every text is a labelled core sentence dressed the way
tweets are: @mentions, openers, a neutral clause about when and where, hashtags, emoticons,
letter runs, URLs, odd capitalisation. The dressing is shared by all classes (except the
emoticons and a few hashtags), so the model has to learn the sentiment words, and texts range
from two words to about twenty-five. The load test posts these texts too, so requests vary in
length and vocabulary the way real traffic does.
"""

from __future__ import annotations

import random
import re

NOUNS = (
    "service", "food", "flight", "staff", "product", "delivery", "support", "experience",
    "app", "hotel", "room", "movie", "phone", "battery", "coffee", "driver", "update",
    "restaurant", "team", "order", "show", "game", "course", "doctor", "store", "website",
    "package", "train", "bus", "pizza", "waiter", "concert", "book", "laptop", "camera",
    "customer service", "checkout", "menu", "breakfast", "seat", "crew", "refund process",
    "new album", "series finale", "internet connection", "bank", "landlord", "gym", "haircut",
    "weather", "view", "parcel", "connection", "ticket", "meal",
)  # fmt: skip
POSITIVE = (
    "excellent", "great", "amazing", "wonderful", "fantastic", "good", "lovely", "awesome",
    "perfect", "superb", "friendly", "helpful", "brilliant", "delightful", "outstanding",
    "fast", "smooth", "incredible", "impressive", "pleasant", "nice", "beautiful", "reliable",
    "spotless", "delicious", "fun", "cool", "solid", "top notch", "first class",
)  # fmt: skip
NEGATIVE = (
    "bad", "terrible", "awful", "horrible", "poor", "rude", "slow", "disappointing",
    "useless", "broken", "dreadful", "lousy", "annoying", "unacceptable", "pathetic",
    "disgusting", "frustrating", "overpriced", "cold", "dirty", "late", "buggy", "noisy",
    "unreliable", "ridiculous", "shoddy", "mediocre", "pricey", "delayed", "cancelled",
    "damaged", "overbooked",
)  # fmt: skip
DISASTERS = ("joke", "disaster", "mess", "nightmare", "rip off")
POSITIVE_VERBS = ("loved", "enjoyed", "adored", "really liked", "can't stop praising")
NEGATIVE_VERBS = ("hated", "regret", "can't stand", "really disliked", "am done with")
INTENSIFIERS = ("", "", "", "really ", "very ", "so ", "truly ", "absolutely ", "quite ")
ADVERBS = ("", "", "really ", "truly ", "just ", "honestly ")  # before an article: "really a"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PLACES = (
    "office", "station", "airport", "library", "gym", "market", "city centre", "park",
    "mall", "beach", "school", "post office", "downtown branch", "front desk",
)  # fmt: skip
TIMES = ("tomorrow", "tonight", "this morning", "next week", "at noon", "later today", "at 9")
PEOPLE = ("my sister", "my mum", "the kids", "a friend", "my boss", "the whole team", "my dad")
MENTIONS = ("@support", "@airline", "@shop", "@friend", "@deliveryco", "@cityhotel", "@help")
HASHTAGS = ("#monday", "#travel", "#food", "#work", "#weekend", "#tech", "#life", "#news")
POSITIVE_TAGS = ("#happy", "#blessed", "#recommended", "#love")
NEGATIVE_TAGS = ("#fail", "#neveragain", "#disappointed", "#complaint")
POSITIVE_EMOTICONS = (":)", ":-)", ":D", "<3", "😊", "👍")
NEGATIVE_EMOTICONS = (":(", ":-(", ">:(", "😡", "👎")
OPENERS = ("ok so", "honestly", "tbh", "well", "update:", "fyi", "so", "just saying,", "hey")
CLOSERS = ("today", "this week", "lol", "again", "as usual", "for once", "btw", "haha")
URLS = ("http://t.co/x1Yz", "https://t.co/Ab3dE9", "https://example.com/p/123", "www.example.org")

POSITIVE_TEMPLATES = (
    "I had {a_pos} {noun}",
    "the {noun} was {int}{pos}",
    "what {a_int_pos} {noun}",
    "{pverb} the {noun}, {int}{pos}",
    "thanks for the {pos} {noun}",
    "{int}{pos} {noun} as always",
    "such {a_pos} {noun}, highly recommend",
    "the {noun} is {int}{pos} and worth it",
    "I really enjoyed the {noun}, it was {pos}",
    "{pverb} the {noun}",
    "best {noun} ever",
    "your {noun} is {int}{pos}, thank you",
    "the {noun} made my day",
    "five stars for the {noun}",
    "{pos} {noun} and {pos2} {noun2}",
)
NEGATIVE_TEMPLATES = (
    "that is {adv}{a_neg} {noun}",
    "the {noun} was {int}{neg}",
    "what {a_int_neg} {noun}",
    "worst {noun} ever, {int}{neg}",
    "{neg} {noun}, never again",
    "your {noun} is {int}{neg}",
    "I had {a_neg} {noun} and nobody helped",
    "the {noun} is {int}{neg}, I want a refund",
    "{nverb} the {noun}, it was {neg}",
    "{nverb} the {noun}",
    "still waiting, the {noun} is {neg}",
    "one star for the {noun}",
    "the {noun} ruined my day",
    "the {noun} is {adv}a {disaster}",
    "{neg} {noun} and {neg2} {noun2}",
)
# Negation, kept to a small share: "not good" is negative, "not bad at all" is positive.
NEGATED_POSITIVE_TEMPLATES = (
    "the {noun} was not {neg} at all",
    "no complaints about the {noun}",
    "never had a problem with the {noun}",
)
NEGATED_NEGATIVE_TEMPLATES = (
    "the {noun} was not {pos} at all",
    "the {noun} is not {int}{pos}",
    "would not recommend the {noun}",
    "not {a_pos} {noun}",
)
NEUTRAL_TEMPLATES = (
    "the {noun} arrived on {day}",
    "is the {noun} open on {day}",
    "going to the {place} {time}",
    "I had the {noun} checked on {day}",
    "the {noun} schedule changed to {day}",
    "meeting at the {place} {time}",
    "just ordered a {noun} for {day}",
    "does anyone know when the {noun} opens {time}",
    "the {noun} is at the {place}",
    "heading to the {place} to pick up the {noun}",
    "the {noun} was delivered to the {place}",
    "I booked the {noun} for {day}",
    "waiting for the {noun} at the {place}",
    "the {noun} will be updated {time}",
    "my {noun} is at the {place} until {day}",
    "where is the nearest {noun}",
    "reading about the {noun} {time}",
    "the {noun} starts at 9 on {day}",
    "we changed the {noun} to {day}",
    "picked up the {noun} with {person}",
    "the {noun} costs the same as last year",
    "anyone tried the {noun} at the {place}",
    "see you at the {place} {time}",
    "hello everyone",
    "hi {person}, call me when you are free",
    "on my way to the {place}",
    "back home now",
    "what time does the {place} close",
    "new photos from the {place}",
    "it is raining again",
    "who else is watching the {noun} {time}",
    "traffic near the {place} {time}",
    "I am at the {place} {time}",
    "we are at the {place} with {person}",
)
CONTEXT_CLAUSES = (
    "on {day}", "at the {place}", "with {person}", "after work", "{time}",
    "for the second time this month", "while waiting at the {place}", "we went on {day}",
    "I was there with {person}", "first time at the {place}",
)  # fmt: skip

_NEGATION_SHARE = 0.1


def _core(label: str, rng: random.Random) -> str:
    if label == "Neutral":
        return rng.choice(NEUTRAL_TEMPLATES)
    negated = rng.random() < _NEGATION_SHARE
    if label == "Positive":
        return rng.choice(NEGATED_POSITIVE_TEMPLATES if negated else POSITIVE_TEMPLATES)
    return rng.choice(NEGATED_NEGATIVE_TEMPLATES if negated else NEGATIVE_TEMPLATES)


def _a(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _fill(template: str, rng: random.Random) -> str:
    nouns = rng.sample(NOUNS, 2)
    (pos, pos2), (neg, neg2) = rng.sample(POSITIVE, 2), rng.sample(NEGATIVE, 2)
    intensifier = rng.choice(INTENSIFIERS)
    text = template.format(
        pos=pos,
        pos2=pos2,
        neg=neg,
        neg2=neg2,
        adv=rng.choice(ADVERBS),
        a_pos=_a(pos),
        a_neg=_a(neg),
        a_int_pos=_a(intensifier + pos),
        a_int_neg=_a(intensifier + neg),
        disaster=rng.choice(DISASTERS),
        noun=nouns[0],
        noun2=nouns[1],
        int=intensifier,
        pverb=rng.choice(POSITIVE_VERBS),
        nverb=rng.choice(NEGATIVE_VERBS),
        day=rng.choice(DAYS),
        place=rng.choice(PLACES),
        time=rng.choice(TIMES),
        person=rng.choice(PEOPLE),
    )
    if rng.random() < 0.1:  # letter runs, as in "sooo gooood"
        word = rng.choice((pos, neg, "so"))
        longer = word[:-1] + word[-1] * rng.randint(3, 6)
        text = re.sub(rf"\b{re.escape(word)}\b", longer, text, count=1)
    return text


def _dress(core: str, label: str, rng: random.Random) -> str:
    """Wrap a core sentence in tweet furniture; only emoticons and some tags carry the label."""
    parts = []
    if rng.random() < 0.25:
        parts.append(rng.choice(MENTIONS))
    if rng.random() < 0.2:
        parts.append(rng.choice(OPENERS))
    if rng.random() < 0.15:  # a story first: "picked up the parcel on monday. it was damaged"
        parts.append(_fill(rng.choice(NEUTRAL_TEMPLATES), rng) + ".")
    parts.append(core)
    if rng.random() < 0.35:
        parts[-1] += ","
        parts.append(_fill(rng.choice(CONTEXT_CLAUSES), rng))
    if rng.random() < 0.2:
        parts.append(rng.choice(CLOSERS))
    text = " ".join(parts) + rng.choice(("", "", "", ".", "!", "!!", "?" * (label == "Neutral")))
    extras = []
    if rng.random() < 0.2:
        tags = {"Positive": POSITIVE_TAGS, "Negative": NEGATIVE_TAGS}.get(label, HASHTAGS)
        extras.append(rng.choice(HASHTAGS if rng.random() < 0.5 else tags))
    if label != "Neutral" and rng.random() < 0.2:
        extras.append(rng.choice(POSITIVE_EMOTICONS if label == "Positive" else NEGATIVE_EMOTICONS))
    if rng.random() < 0.1:
        extras.append(rng.choice(URLS))
    text = " ".join([text, *extras])
    case = rng.random()
    if case < 0.5:
        text = text[0].upper() + text[1:]
    elif case < 0.53:
        text = text.upper()
    return text


_LABEL_CYCLE = ("Neutral", "Negative", "Positive")


def generate(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` (text, label) pairs, classes balanced and interleaved, the same for the same seed."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        label = _LABEL_CYCLE[i % len(_LABEL_CYCLE)]
        pairs.append((_dress(_fill(_core(label, rng), rng), label, rng), label))
    return pairs
