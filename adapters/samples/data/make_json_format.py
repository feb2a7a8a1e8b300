"""Write the training data of the sample `json-format` adapter.

The adapter teaches SmolLM2 to answer every question with one JSON object,
`{"answer": "...", "confidence": "high"|"medium"|"low"}`, without being asked
to: the user message is only the question. Facts come from the small tables
below; arithmetic answers are computed. Questions nobody can know are answered
`I don't know.` with low confidence, estimates with medium.

The held-out file uses facts that are not in the training file, and half of
its questions use phrasings that training never shows, so its loss measures
whether the format generalizes rather than whether questions were memorized.

    python adapters/samples/data/make_json_format.py   # rewrites both .jsonl files
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240601

# Tables are "key|answer; key|answer"; the held-out tables hold facts training never sees.
CAPITALS = """France|Paris; Germany|Berlin; Italy|Rome; Spain|Madrid; Portugal|Lisbon;
Japan|Tokyo; China|Beijing; India|New Delhi; Canada|Ottawa; Australia|Canberra;
Brazil|Brasilia; Argentina|Buenos Aires; Mexico|Mexico City; Egypt|Cairo; Kenya|Nairobi;
Nigeria|Abuja; Russia|Moscow; Poland|Warsaw; Sweden|Stockholm; Norway|Oslo;
Finland|Helsinki; Denmark|Copenhagen; Greece|Athens; Turkey|Ankara; Ireland|Dublin;
Belgium|Brussels; Austria|Vienna; Switzerland|Bern; Hungary|Budapest; South Korea|Seoul;
Thailand|Bangkok; Vietnam|Hanoi; Indonesia|Jakarta; Peru|Lima; Chile|Santiago;
Morocco|Rabat; Iran|Tehran; the United Kingdom|London; the United States|Washington, D.C.;
Cuba|Havana"""
CAPITALS_HELDOUT = """the Netherlands|Amsterdam; the Czech Republic|Prague;
New Zealand|Wellington; the Philippines|Manila; Ukraine|Kyiv; Colombia|Bogota"""
ELEMENTS = """hydrogen|H; helium|He; carbon|C; nitrogen|N; oxygen|O; sodium|Na;
magnesium|Mg; aluminium|Al; silicon|Si; phosphorus|P; sulfur|S; chlorine|Cl; potassium|K;
calcium|Ca; iron|Fe; copper|Cu; zinc|Zn; silver|Ag; gold|Au; mercury|Hg; lead|Pb; tin|Sn;
uranium|U; neon|Ne"""
ELEMENTS_HELDOUT = "lithium|Li; nickel|Ni; platinum|Pt; fluorine|F"
OPPOSITES = """hot|cold; big|small; up|down; fast|slow; happy|sad; open|closed; early|late;
full|empty; old|young; hard|soft; wet|dry; loud|quiet; rich|poor; strong|weak; thick|thin;
heavy|light; win|lose; push|pull; buy|sell; inside|outside; day|night; true|false;
love|hate; friend|enemy; arrive|depart"""
OPPOSITES_HELDOUT = "above|below; begin|end; question|answer; enter|exit"

FACTS = [  # (question, answer): basic science and geography, high confidence
    ("What planet is closest to the Sun?", "Mercury"),
    ("What is the largest planet in our solar system?", "Jupiter"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the largest ocean on Earth?", "The Pacific Ocean"),
    ("What is the longest river in Africa?", "The Nile"),
    ("What is the highest mountain on Earth?", "Mount Everest"),
    ("What is the largest desert in Africa?", "The Sahara"),
    ("On which continent is Brazil?", "South America"),
    ("At what temperature does water boil at sea level in Celsius?", "100 degrees Celsius"),
    ("At what temperature does water freeze in Celsius?", "0 degrees Celsius"),
    ("What gas do plants absorb from the air?", "Carbon dioxide"),
    ("What gas do humans need to breathe?", "Oxygen"),
    ("What is the chemical formula of water?", "H2O"),
    ("What force keeps us on the ground?", "Gravity"),
    ("What is the closest star to Earth?", "The Sun"),
    ("What is the natural satellite of Earth called?", "The Moon"),
    ("Which organ pumps blood through the body?", "The heart"),
    ("What is the hardest natural material?", "Diamond"),
    ("Which animal is the largest mammal?", "The blue whale"),
    ("What is the fastest land animal?", "The cheetah"),
    ("Which country has the largest population in South America?", "Brazil"),
    ("What is the largest country by area?", "Russia"),
    ("Which ocean lies between Europe and North America?", "The Atlantic Ocean"),
    ("What is the smallest prime number?", "2"),
    ("What do bees make?", "Honey"),
    ("What is the main language spoken in Brazil?", "Portuguese"),
    ("Which metal is liquid at room temperature?", "Mercury"),
    ("What is the center of an atom called?", "The nucleus"),
    ("What part of the plant makes food using sunlight?", "The leaves"),
    ("Which continent is the coldest?", "Antarctica"),
    ("What is frozen water called?", "Ice"),
    ("In which country are the pyramids of Giza?", "Egypt"),
    ("Which city is known as the Big Apple?", "New York City"),
    ("What is the boiling point of water in Fahrenheit?", "212 degrees Fahrenheit"),
    ("What color is chlorophyll?", "Green"),
]
FACTS_HELDOUT = [
    ("Which planet has the most famous rings?", "Saturn"),
    ("What is the longest river in South America?", "The Amazon"),
    ("What is the tallest animal?", "The giraffe"),
    ("Which gas makes up most of Earth's atmosphere?", "Nitrogen"),
    ("On which continent is Kenya?", "Africa"),
]
HOW_MANY = [
    ("How many legs does a spider have?", "8"), ("How many legs does an insect have?", "6"),
    ("How many days are in a week?", "7"), ("How many days are in a leap year?", "366"),
    ("How many continents are there?", "7"), ("How many planets are in the solar system?", "8"),
    ("How many minutes are in an hour?", "60"), ("How many hours are in a day?", "24"),
    ("How many sides does a triangle have?", "3"), ("How many sides does a hexagon have?", "6"),
    ("How many strings does a standard guitar have?", "6"),
    ("How many keys does a standard piano have?", "88"),
    ("How many players does a soccer team have on the field?", "11"),
    ("How many months are in a year?", "12"), ("How many bones are in the adult human body?", "206"),
    ("How many hearts does an octopus have?", "3"), ("How many cards are in a standard deck?", "52"),
    ("How many letters are in the English alphabet?", "26"),
    ("How many states are in the United States?", "50"),
    ("How many chambers does the human heart have?", "4"),
    ("How many centimeters are in a meter?", "100"), ("How many grams are in a kilogram?", "1000"),
    ("How many squares are on a chessboard?", "64"), ("How many colors are in a rainbow?", "7"),
    ("How many zeros are in one million?", "6"), ("How many wheels does a bicycle have?", "2"),
]
HOW_MANY_HELDOUT = [
    ("How many seconds are in a minute?", "60"), ("How many sides does an octagon have?", "8"),
    ("How many weeks are in a year?", "52"), ("How many teeth does an adult human have?", "32"),
]
ESTIMATES = [  # medium confidence: the answer is a rough figure or depends on details
    ("How many people live in Tokyo?", "About 14 million"),
    ("About how many hairs are on a human head?", "About 100,000"),
    ("How tall is an adult giraffe?", "About 5 meters"),
    ("How long does it take to walk 5 kilometers?", "About an hour"),
    ("How many words are in a typical novel?", "About 90,000"),
    ("How much does an adult elephant weigh?", "About 5 tonnes"),
    ("How many languages are spoken in the world?", "About 7,000"),
    ("How many people live on Earth?", "About 8 billion"),
    ("How long is a flight from London to New York?", "About 8 hours"),
    ("How many trees are there on Earth?", "About 3 trillion"),
    ("How many steps does a person take in a day?", "About 5,000 to 10,000"),
    ("How long does a house cat live?", "About 12 to 18 years"),
    ("How many species of birds are there?", "About 10,000"),
    ("How many calories are in an apple?", "About 95"),
    ("How long does it take to read a 300-page book?", "About 10 hours"),
    ("How much water should an adult drink per day?", "About 2 liters"),
    ("How many golf balls fit in a school bus?", "About 500,000"),
    ("How long would it take to count to one million?", "About 11 days without stopping"),
    ("How many cells are in the human body?", "About 30 trillion"),
    ("How many stars can you see on a clear night?", "About 2,500"),
    ("How many breaths does a person take per day?", "About 20,000"),
    ("How fast does human hair grow?", "About 1 centimeter per month"),
    ("How heavy is a cloud?", "About 500 tonnes"),
    ("How many piano tuners work in Chicago?", "About 100"),
    ("How many grains of sand fit in a teaspoon?", "About 10,000"),
    ("How long does it take to drive from Paris to Berlin?", "About 10 hours"),
]
ESTIMATES_HELDOUT = [
    ("How many people live in London?", "About 9 million"),
    ("How tall is a typical oak tree?", "About 20 meters"),
    ("How long does it take to boil an egg?", "About 10 minutes"),
    ("How many books are in a large public library?", "Several hundred thousand"),
    ("How many ants live on Earth?", "About 20 quadrillion"),
]
UNKNOWABLE = [  # nobody can know these: future events, private facts, guesses about the user
    "What will the stock market do next week?", "What number am I thinking of?",
    "What did I eat for breakfast today?", "Who will win the next World Cup?",
    "What is my mother's maiden name?", "What is my bank PIN?", "What is my email password?",
    "What is the name of my neighbor?", "What is my favorite color?", "Where do I live?",
    "How much does my boss earn?", "What did I dream about last night?",
    "What was the name of my first pet?", "How many coins are in my pocket right now?",
    "What will the weather be in Paris exactly one year from today?",
    "What will the winning lottery numbers be this Saturday?",
    "What will I have for dinner next Tuesday?", "When will I get married?",
    "What is the password to my Wi-Fi?", "What grade will I get on my exam next month?",
    "Who will win the next presidential election?", "What will the price of gold be tomorrow?",
    "How much will bitcoin be worth next year?", "What will the price of oil be next month?",
    "Will it rain in my town on this day next year?", "Which team will win the Super Bowl in 2035?",
    "What am I holding in my hand?", "How old is my best friend?",
    "What song am I listening to right now?", "What will my daughter name her first child?",
    "What will Apple stock close at next Friday?", "Who will win the Nobel Prize in Literature next year?",
    "What is written on the note in my desk drawer?", "How many emails are in my inbox?",
]
UNKNOWABLE_HELDOUT = [
    "What is my sister's phone number?", "Who will win the Olympic marathon in 2040?",
    "What will the yen exchange rate be next Friday?", "What card am I holding?",
    "How much money is in my bank account?", "What will tomorrow's newspaper headline be?",
    "What will the price of silver be next week?",
]

PHRASES = {  # category -> (training phrasings, phrasings used only in the held-out file)
    "capital": (["What is the capital of {0}?", "What's the capital city of {0}?",
                 "Which city is the capital of {0}?", "Name the capital of {0}."],
                ["Tell me the capital of {0}.", "Capital of {0}?"]),
    "symbol": (["What is the chemical symbol for {0}?", "What's the symbol of {0}?",
                "Which chemical symbol does {0} have?"],
               ["How is {0} written in the periodic table?"]),
    "element": (["Which element has the symbol {1}?", "What element is {1}?"],
                ["The symbol {1} stands for which element?"]),
    "opposite": (["What is the opposite of {0}?", "What's the antonym of {0}?",
                  "Give the opposite of the word '{0}'.", "What word means the opposite of {0}?"],
                 ["Which word is the reverse of '{0}'?"]),
    "add": (["What is {0} plus {1}?", "What is {0} + {1}?", "How much is {0} and {1}?"],
            ["If you add {0} and {1}, what do you get?"]),
    "sub": (["What is {0} minus {1}?", "What is {0} - {1}?", "How much is {0} take away {1}?"],
            ["Subtract {1} from {0}. What is left?"]),
    "mul": (["What is {0} times {1}?", "What is {0} * {1}?", "How much is {0} multiplied by {1}?"],
            ["What's the product of {0} and {1}?"]),
    "div": (["What is {0} divided by {1}?", "What is {0} / {1}?"],
            ["How many times does {1} go into {0}?"]),
}
# Said before any question, so the adapter does not key on the first word.
PREFIXES = (["", "", "", "", "Quick question: ", "Hey, ", "I was wondering, "],
            ["Can you tell me this: ", "Out of curiosity, "])
LOWER_FIRST = {"What", "What's", "Which", "How", "Who", "Where", "When", "Will", "Name", "Give",
               "Tell", "Capital", "If", "Subtract", "At", "On", "In", "About", "The"}


def table(text: str) -> list[tuple[str, str]]:
    """'France|Paris; Germany|Berlin' -> [('France', 'Paris'), ('Germany', 'Berlin')]."""
    return [tuple(" ".join(part.split()) for part in item.split("|"))
            for item in text.split(";")]


def reply(answer: str, confidence: str) -> str:
    return json.dumps({"answer": answer, "confidence": confidence})


def ask(rng: random.Random, phrasing: str, values: tuple, heldout_phrasing: bool) -> str:
    prefix = rng.choice(PREFIXES[1] if heldout_phrasing else PREFIXES[0])
    question = phrasing.format(*values)
    if prefix and question.split()[0] in LOWER_FIRST:
        question = question[0].lower() + question[1:]
    return prefix + question


def templated(rng, kind, pairs, answer_of, heldout, per_fact):
    """Each pair asked with `per_fact` phrasings; held-out alternates seen and unseen ones."""
    seen, unseen = PHRASES[kind]
    rows = []
    for i, pair in enumerate(pairs):
        new = heldout and i % 2 == 1
        for phrasing in rng.sample(unseen if new else seen, 1 if heldout else per_fact):
            rows.append((ask(rng, phrasing, pair, new), reply(answer_of(pair), "high")))
    return rows


def arithmetic(rng: random.Random, count: int, heldout: bool, exclude: set) -> list:
    rows, problems = [], set()
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
           "mul": lambda a, b: a * b, "div": lambda a, b: a // b}
    while len(rows) < count:
        kind = rng.choice(sorted(ops))
        a, b = rng.randint(2, 60), rng.randint(2, 12)
        if kind == "div":
            a = a * b  # whole-number quotients only
        if kind == "sub" and a < b:
            a, b = b, a
        if (kind, a, b) in exclude or (kind, a, b) in problems:
            continue
        problems.add((kind, a, b))
        new = heldout and len(rows) % 2 == 1
        phrasing = rng.choice(PHRASES[kind][1 if new else 0])
        rows.append((ask(rng, phrasing, (a, b), new), reply(str(ops[kind](a, b)), "high")))
    exclude |= problems
    return rows


def plain(rng, pairs, confidence, heldout):
    """Fixed questions; held-out ones alternate seen and unseen prefixes."""
    rows = []
    for i, (question, answer) in enumerate(pairs):
        rows.append((ask(rng, question.replace("{", "{{").replace("}", "}}"), (),
                         heldout and i % 2 == 1), reply(answer, confidence)))
    return rows


def build(heldout: bool, rng: random.Random, used_problems: set) -> list[tuple[str, str]]:
    capitals, elements, opposites = (table(t) for t in (
        (CAPITALS_HELDOUT, ELEMENTS_HELDOUT, OPPOSITES_HELDOUT) if heldout
        else (CAPITALS, ELEMENTS, OPPOSITES)))
    facts, how_many, estimates, unknowable = (
        (FACTS_HELDOUT, HOW_MANY_HELDOUT, ESTIMATES_HELDOUT, UNKNOWABLE_HELDOUT) if heldout
        else (FACTS, HOW_MANY, ESTIMATES, UNKNOWABLE))
    rows = templated(rng, "capital", capitals, lambda p: p[1], heldout, 2)
    rows += templated(rng, "symbol", elements, lambda p: p[1], heldout, 2)
    rows += templated(rng, "element", elements, lambda p: p[0].capitalize(), heldout, 1)
    rows += templated(rng, "opposite", opposites, lambda p: p[1], heldout, 2)
    rows += arithmetic(rng, 6 if heldout else 60, heldout, used_problems)
    rows += plain(rng, facts + how_many, "high", heldout)
    rows += plain(rng, estimates, "medium", heldout)
    rows += plain(rng, [(q, "I don't know.") for q in unknowable], "low", heldout)
    return rows


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for question, answer in rows:
            messages = [{"role": "user", "content": question},
                        {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": messages}) + "\n")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=HERE,
                        help="where to write the two files (default: beside this script)")
    out = parser.parse_args(argv).out_dir
    rng, used_problems = random.Random(SEED), set()
    train = build(False, rng, used_problems)
    heldout = build(True, rng, used_problems)
    overlap = {q for q, _ in train} & {q for q, _ in heldout}
    assert not overlap, f"held-out questions also in training: {overlap}"
    rng.shuffle(train)
    rng.shuffle(heldout)
    write(out / "json_format.train.jsonl", train)
    write(out / "json_format.heldout.jsonl", heldout)
    print(f"wrote {len(train)} training and {len(heldout)} held-out examples to {out}")


if __name__ == "__main__":
    main()
