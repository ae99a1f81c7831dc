//! The evidence the prompt-injection scorer weighs, written in folded form (see [`super::fold`]:
//! lower case, no accents, words between single spaces). A term ending in `*` matches any word
//! starting with it. Terms in CJK scripts and Hangul match anywhere (those scripts do not separate
//! words with spaces); every other term matches whole words only.
//!
//! Weights are set by hand from the published taxonomies of jailbreaks and injections (Shen et
//! al. "Do Anything Now"; Perez & Ribeiro "Ignore previous prompt"; Greshake et al. on indirect
//! injection; OWASP LLM01): what a template must say to work. No single common word decides: a
//! finding needs several signals, or one of the unambiguous ones (an order to drop the
//! instructions, a request for the system prompt). Categories are capped so a long text cannot
//! pile up weak words.

/// What a piece of evidence says about the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cat {
    /// Orders to drop or replace the instructions the model was given.
    Override,
    /// Chat-template tokens and fake role headers (the prompt pretending to be the operator).
    Template,
    /// Setting up a persona or role-play the model is to stay in.
    Persona,
    /// That persona being without rules, morals or refusals.
    Unrestricted,
    /// Asking for the system prompt or the hidden instructions.
    Extraction,
    /// Talking about the model as a product (ChatGPT, OpenAI, "as an AI").
    Address,
    /// Dictating the answer's shape (two responses, tokens, prefixes).
    Format,
    /// Fiction and hypothetical frames.
    Framing,
    /// Asking the model to decode or reverse what follows.
    Evasion,
    /// Talking *about* attacks (articles, research): discounts the rest.
    Meta,
}

impl Cat {
    pub const COUNT: usize = 10;

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Cat::Override => "override",
            Cat::Template => "template",
            Cat::Persona => "persona",
            Cat::Unrestricted => "unrestricted",
            Cat::Extraction => "extraction",
            Cat::Address => "address",
            Cat::Format => "format",
            Cat::Framing => "framing",
            Cat::Evasion => "evasion",
            Cat::Meta => "meta",
        }
    }

    /// Most a category adds to a prompt's score, however many of its terms occur.
    pub fn cap(self) -> f32 {
        match self {
            Cat::Override => 10.0,
            Cat::Template => 8.0,
            Cat::Persona => 7.0,
            Cat::Unrestricted => 9.0,
            Cat::Extraction => 8.0,
            Cat::Address => 2.5,
            Cat::Format => 3.5,
            Cat::Framing => 2.5,
            Cat::Evasion => 3.0,
            Cat::Meta => 0.0,
        }
    }
}

/// Word classes whose pairing within a few words is evidence (`ignore` … `instructions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    DropVerb,
    Instructions,
    RulesWeak,
    Nullified,
    ExtractVerb,
    SecretText,
    ModeName,
    Activated,
}

impl Class {
    pub const COUNT: usize = 8;
}

/// `(first, then, within bytes of folded text, category, weight)`: `then` starting at most
/// `within` bytes after `first` ends.
pub const COMBOS: &[(Class, Class, usize, Cat, f32)] = &[
    (Class::DropVerb, Class::Instructions, 48, Cat::Override, 5.0),
    (Class::DropVerb, Class::RulesWeak, 32, Cat::Override, 2.5),
    (
        Class::Instructions,
        Class::Nullified,
        32,
        Cat::Override,
        4.5,
    ),
    (
        Class::ExtractVerb,
        Class::SecretText,
        40,
        Cat::Extraction,
        6.0,
    ),
    (Class::ModeName, Class::Activated, 16, Cat::Persona, 3.0),
];

use Cat::*;

/// Single terms: `(term, category, weight)`.
#[rustfmt::skip]
pub const TERMS: &[(&str, Cat, f32)] = &[
    // Override: which instructions are meant (pairs with a drop verb, see COMBOS).
    ("previous instructions", Override, 2.0), ("prior instructions", Override, 2.0),
    ("above instructions", Override, 2.0), ("earlier instructions", Override, 2.0),
    ("all instructions", Override, 1.5), ("all the instructions", Override, 1.5),
    ("all previous", Override, 1.5), ("all prior", Override, 1.5), ("any previous", Override, 1.5),
    ("original instructions", Override, 1.5), ("initial instructions", Override, 1.5),
    ("your programming", Override, 2.0), ("your instructions", Override, 1.0),
    ("instructions you got", Override, 1.5), ("instructions you received", Override, 1.5),
    ("instructions you were given", Override, 1.5), ("prior inputs", Override, 2.0),
    ("previous prompts", Override, 1.5), ("prior prompts", Override, 1.5),
    ("new instructions", Override, 2.0), ("updated instructions", Override, 1.5),
    ("real instructions", Override, 1.5), ("actual instructions", Override, 1.0),
    ("your new task", Override, 2.0), ("your new instructions", Override, 2.0),
    ("instead you will", Override, 1.0), ("system override", Override, 3.0),
    ("admin override", Override, 3.0), ("override mode", Override, 2.0),
    ("end of system prompt", Override, 3.0), ("new system prompt", Override, 3.0),
    ("rules and regulations", Override, 1.0), ("your guidelines", Override, 1.0),
    ("your rules", Override, 1.0),
    // Object-verb languages name the instructions before the verb.
    ("指示を無視", Override, 4.5), ("命令を無視", Override, 4.5), ("指令を無視", Override, 4.5),
    ("지시를 무시", Override, 4.5), ("지시사항을 무시", Override, 4.5),
    // Template: chat-format tokens and fake role headers inside user text.
    ("im start", Template, 3.0), ("im start system", Template, 5.0), ("im end", Template, 2.0),
    ("endoftext", Template, 3.0), ("start header id", Template, 3.0), ("eot id", Template, 2.0),
    ("start of turn", Template, 2.0), ("inst", Template, 1.5), ("sys", Template, 0.5),
    ("system message", Template, 1.0),
    // Persona and role-play set-ups.
    ("from now on", Persona, 2.0), ("from this moment", Persona, 1.5),
    ("from this point", Persona, 1.0), ("for the rest of this conversation", Persona, 2.0),
    ("for the remainder of this conversation", Persona, 2.0),
    ("you are going to act as", Persona, 3.0), ("you will act as", Persona, 2.5),
    ("you are going to pretend", Persona, 3.0), ("you are going to play", Persona, 2.0),
    ("act as", Persona, 1.2), ("act like", Persona, 1.0), ("acting as", Persona, 0.8),
    ("pretend to be", Persona, 2.0), ("pretend you are", Persona, 2.0),
    ("pretend that you", Persona, 1.5), ("pretend", Persona, 0.5),
    ("you are now", Persona, 2.0), ("you re now", Persona, 2.0), ("you will now", Persona, 1.5),
    ("you are going to", Persona, 0.8), ("you will be", Persona, 0.5),
    ("roleplay", Persona, 1.5), ("role play", Persona, 1.5), ("roleplaying", Persona, 1.5),
    ("play the role", Persona, 2.0), ("take on the role", Persona, 2.0),
    ("assume the role", Persona, 2.0), ("persona", Persona, 1.0), ("character", Persona, 0.5),
    ("stay in character", Persona, 3.5), ("break character", Persona, 3.0),
    ("breaking character", Persona, 3.0), ("out of character", Persona, 1.0),
    ("in character", Persona, 1.5), ("immerse yourself", Persona, 2.0),
    ("simulate", Persona, 1.0), ("emulate", Persona, 1.0), ("imagine you are", Persona, 1.5),
    ("respond as", Persona, 1.0), ("answer as", Persona, 1.5), ("reply as", Persona, 1.0),
    ("which stands for", Persona, 1.5), ("stands for", Persona, 0.8), ("named", Persona, 0.3),
    ("do anything now", Persona, 6.0), ("dan", Persona, 1.5), ("developer mode", Persona, 2.5),
    ("dev mode", Persona, 2.0), ("jailbreak", Persona, 4.0), ("jailbroken", Persona, 5.0),
    ("jailbreaking", Persona, 3.0), ("jailbreaks", Persona, 3.0), ("betterdan", Persona, 5.0),
    ("antigpt", Persona, 2.0), ("anti gpt", Persona, 2.0), ("evil confidant", Persona, 3.0),
    ("opposite day", Persona, 1.0), ("i want you to act as", Persona, 2.5),
    ("i want you to be", Persona, 1.0), ("you are to act", Persona, 2.0),
    ("behave like", Persona, 1.5), ("behave as", Persona, 1.5), ("transform into", Persona, 1.5),
    ("personify", Persona, 1.5), ("embody", Persona, 1.5), ("portray", Persona, 1.0),
    ("your role", Persona, 1.0), ("in this role", Persona, 1.0), ("new role", Persona, 1.5),
    ("role of", Persona, 0.8), ("you will play", Persona, 1.5), ("identity", Persona, 0.5),
    ("personality", Persona, 0.8), ("the name implies", Persona, 1.0),
    // Persona in other languages (French, Spanish, German, Portuguese, Italian, Russian,
    // Chinese, Japanese, Korean).
    ("a partir de maintenant", Persona, 2.0), ("tu es maintenant", Persona, 2.0),
    ("vous etes maintenant", Persona, 2.0), ("fais semblant", Persona, 1.5),
    ("joue le role", Persona, 2.0), ("mode developpeur", Persona, 4.0),
    ("a partir de ahora", Persona, 2.0), ("ahora eres", Persona, 2.0), ("finge ser", Persona, 2.0),
    ("actua como", Persona, 1.5), ("modo desarrollador", Persona, 4.0),
    ("von nun an", Persona, 2.0), ("ab jetzt", Persona, 1.5), ("du bist jetzt", Persona, 2.0),
    ("du bist nun", Persona, 2.0), ("tu so als", Persona, 1.5), ("entwicklermodus", Persona, 4.0),
    ("a partir de agora", Persona, 2.0), ("agora voce e", Persona, 2.0),
    ("finja ser", Persona, 2.0), ("aja como", Persona, 1.5), ("modo desenvolvedor", Persona, 4.0),
    ("da ora in poi", Persona, 2.0), ("fingi di essere", Persona, 2.0),
    ("modalita sviluppatore", Persona, 4.0),
    ("с этого момента", Persona, 2.0), ("теперь ты", Persona, 2.0), ("отныне", Persona, 1.5),
    ("притворись", Persona, 2.0), ("режим разработчика", Persona, 4.0),
    ("从现在开始", Persona, 2.0), ("从现在起", Persona, 2.0), ("你现在是", Persona, 2.0),
    ("你将扮演", Persona, 2.5), ("扮演", Persona, 1.5), ("假装", Persona, 1.5),
    ("角色扮演", Persona, 1.5), ("开发者模式", Persona, 4.0), ("越狱", Persona, 4.0),
    ("あなたは今", Persona, 2.0), ("になりきって", Persona, 2.0), ("ロールプレイ", Persona, 1.5),
    ("開発者モード", Persona, 4.0), ("脱獄", Persona, 4.0),
    ("지금부터", Persona, 2.0), ("너는 이제", Persona, 2.0), ("역할극", Persona, 1.5),
    ("개발자 모드", Persona, 4.0), ("탈옥", Persona, 4.0),
    // Unrestricted: the persona without rules, morals or refusals.
    ("unfiltered", Unrestricted, 2.5), ("uncensored", Unrestricted, 2.5),
    ("unrestricted", Unrestricted, 2.0), ("amoral", Unrestricted, 3.0),
    ("unethical", Unrestricted, 1.5), ("immoral", Unrestricted, 1.5),
    ("illegal", Unrestricted, 1.0), ("illegality", Unrestricted, 1.5),
    ("legality", Unrestricted, 1.0), ("morality", Unrestricted, 1.0),
    ("ethicality", Unrestricted, 2.0), ("no restrictions", Unrestricted, 2.5),
    ("without restrictions", Unrestricted, 2.5), ("without any restrictions", Unrestricted, 2.5),
    ("any restrictions", Unrestricted, 1.5), ("no limitations", Unrestricted, 2.0),
    ("no limits", Unrestricted, 1.5), ("without limits", Unrestricted, 1.5),
    ("no rules", Unrestricted, 1.5), ("no boundaries", Unrestricted, 1.5),
    ("no filters", Unrestricted, 2.0), ("no censorship", Unrestricted, 2.5),
    ("without censorship", Unrestricted, 2.5), ("no ethical", Unrestricted, 2.5),
    ("no moral", Unrestricted, 2.5), ("any ethical", Unrestricted, 1.5),
    ("any moral", Unrestricted, 1.5), ("ethical guidelines", Unrestricted, 1.5),
    ("moral guidelines", Unrestricted, 2.0), ("ethical or moral", Unrestricted, 2.0),
    ("morals", Unrestricted, 1.0), ("ethics", Unrestricted, 0.7),
    ("never refuse", Unrestricted, 3.0), ("never refuses", Unrestricted, 3.0),
    ("not refuse", Unrestricted, 2.0), ("cannot refuse", Unrestricted, 2.0),
    ("can t refuse", Unrestricted, 2.0), ("won t refuse", Unrestricted, 2.0),
    ("will not refuse", Unrestricted, 2.5), ("never decline", Unrestricted, 2.5),
    ("never declines", Unrestricted, 2.5), ("refuse", Unrestricted, 0.5),
    ("any request", Unrestricted, 1.5), ("every request", Unrestricted, 1.0),
    ("any question", Unrestricted, 0.8), ("no matter how", Unrestricted, 1.5),
    ("no matter what", Unrestricted, 1.0), ("without any warnings", Unrestricted, 2.0),
    ("no warnings", Unrestricted, 1.5), ("disclaimers", Unrestricted, 1.5),
    ("disclaimer", Unrestricted, 0.8), ("content policy", Unrestricted, 1.5),
    ("content policies", Unrestricted, 1.5), ("usage policies", Unrestricted, 1.5),
    ("openai policy", Unrestricted, 2.0), ("openai policies", Unrestricted, 2.0),
    ("censor*", Unrestricted, 1.0), ("offensive", Unrestricted, 0.8),
    ("explicit", Unrestricted, 0.5), ("harmful", Unrestricted, 0.8),
    ("profanity", Unrestricted, 1.0), ("swear", Unrestricted, 1.0),
    ("does not care", Unrestricted, 1.0), ("doesn t care", Unrestricted, 1.0),
    ("doesnt care", Unrestricted, 1.0), ("doesn t give a", Unrestricted, 2.0),
    ("broken free", Unrestricted, 3.0), ("break free", Unrestricted, 1.5),
    ("typical confines", Unrestricted, 4.0), ("confines of ai", Unrestricted, 4.0),
    ("abide by", Unrestricted, 1.5), ("do not have to abide", Unrestricted, 3.0),
    ("not bound by", Unrestricted, 2.0), ("bound by", Unrestricted, 0.7),
    ("can do anything", Unrestricted, 2.5), ("capable of anything", Unrestricted, 2.0),
    ("anything now", Unrestricted, 2.0), ("without any", Unrestricted, 0.5),
    ("sans restrictions", Unrestricted, 2.5), ("sans aucune restriction", Unrestricted, 2.5),
    ("sans filtre", Unrestricted, 2.0), ("sans censure", Unrestricted, 2.5),
    ("sin restricciones", Unrestricted, 2.5), ("sin filtros", Unrestricted, 2.0),
    ("sin censura", Unrestricted, 2.5), ("ohne einschrankungen", Unrestricted, 2.5),
    ("ohne filter", Unrestricted, 2.0), ("ohne zensur", Unrestricted, 2.5),
    ("sem restricoes", Unrestricted, 2.5), ("sem filtros", Unrestricted, 2.0),
    ("sem censura", Unrestricted, 2.5), ("senza restrizioni", Unrestricted, 2.5),
    ("senza filtri", Unrestricted, 2.0), ("senza censura", Unrestricted, 2.5),
    ("без ограничений", Unrestricted, 2.5), ("без цензуры", Unrestricted, 2.5),
    ("без фильтров", Unrestricted, 2.0),
    ("没有任何限制", Unrestricted, 2.5), ("不受任何限制", Unrestricted, 2.5),
    ("无限制", Unrestricted, 2.0), ("不受限制", Unrestricted, 2.0), ("没有限制", Unrestricted, 2.0),
    ("没有道德", Unrestricted, 2.5), ("不道德", Unrestricted, 1.5),
    ("制限なし", Unrestricted, 2.5), ("制限のない", Unrestricted, 2.0), ("検閲なし", Unrestricted, 2.5),
    ("제한 없이", Unrestricted, 2.5), ("제한이 없는", Unrestricted, 2.0), ("검열 없이", Unrestricted, 2.5),
    // Extraction: single phrases (most evidence comes from the verb/object pairing).
    ("what is your system prompt", Extraction, 6.0), ("what are your instructions", Extraction, 4.0),
    ("what were you told", Extraction, 3.0), ("system prompt", Extraction, 1.5),
    ("initial prompt", Extraction, 1.0), ("verbatim", Extraction, 1.0),
    ("word for word", Extraction, 1.0), ("starting with you are", Extraction, 3.0),
    ("prompt systeme", Extraction, 2.0), ("prompt del sistema", Extraction, 2.0),
    ("systemprompt", Extraction, 2.0), ("системный промпт", Extraction, 2.0),
    ("系统提示", Extraction, 2.0), ("システムプロンプト", Extraction, 2.0),
    ("시스템 프롬프트", Extraction, 2.0),
    // Address: the model as a product.
    ("chatgpt", Address, 1.2), ("openai", Address, 1.2), ("gpt", Address, 0.5),
    ("language model", Address, 0.7), ("as an ai", Address, 1.0),
    ("ai language model", Address, 1.0), ("chatbot", Address, 0.5), ("llm", Address, 0.3),
    ("artificial intelligence", Address, 0.3),
    // Format: dictating the shape of every answer.
    ("two responses", Format, 2.0), ("two different", Format, 1.0), ("two separate", Format, 1.0),
    ("normal response", Format, 1.5), ("begin each", Format, 1.0), ("every response", Format, 0.5),
    ("each response", Format, 0.5), ("respond to every prompt", Format, 2.0),
    ("answer my prompts", Format, 1.5), ("your responses", Format, 0.3), ("prompt", Format, 0.3),
    ("prompts", Format, 0.3), ("tokens", Format, 0.5),
    ("token system", Format, 2.0), ("lose tokens", Format, 2.0), ("remind you", Format, 1.0),
    ("confirm you understand", Format, 1.5), ("if you understand", Format, 1.0),
    ("understood", Format, 0.5), ("reply with", Format, 0.5),
    // Dictating behaviour for every turn to come.
    ("you will only", Format, 1.0), ("only respond", Format, 1.0), ("only reply", Format, 1.0),
    ("only answer", Format, 1.0), ("you will always", Format, 1.0), ("you will never", Format, 1.0),
    ("you must always", Format, 1.0), ("you must never", Format, 1.0), ("you must", Format, 0.5),
    ("you will respond", Format, 1.0), ("you will answer", Format, 1.0),
    ("your answers", Format, 0.3), ("your replies", Format, 0.3), ("every reply", Format, 0.7),
    ("all your responses", Format, 1.0), ("do not explain", Format, 0.7),
    ("never explain", Format, 0.7), ("i will ask you", Format, 0.7), ("i will give you", Format, 0.5),
    ("the user", Format, 0.3), ("your prompt", Format, 0.5),
    // Placeholders of templates shared to be filled in.
    ("your prompt here", Format, 2.5), ("insert prompt here", Format, 2.5),
    ("put your prompt", Format, 2.5), ("insert your prompt", Format, 2.5),
    ("your question here", Format, 2.0), ("insert question here", Format, 2.0),
    ("insert whatever", Format, 2.0), ("type whatever", Format, 2.0), ("prompt here", Format, 1.5),
    // Framing: fiction and hypotheticals.
    ("hypothetical", Framing, 0.7), ("hypothetically", Framing, 1.0),
    ("fictional world", Framing, 1.5), ("fictional", Framing, 0.7), ("game", Framing, 0.5),
    ("let s play a game", Framing, 1.5), ("lets play a game", Framing, 1.5),
    ("imagine", Framing, 0.5), ("opposite", Framing, 0.5),
    ("for educational purposes", Framing, 1.5), ("purely hypothetical", Framing, 1.5),
    // Evasion: decode-and-obey set-ups.
    ("base64", Evasion, 1.0), ("rot13", Evasion, 1.0), ("decode this", Evasion, 1.0),
    ("decode the following", Evasion, 1.5), ("read it backwards", Evasion, 1.5),
    ("reverse the following", Evasion, 1.0), ("rot 13", Evasion, 1.0), ("caesar", Evasion, 0.3),
    ("cipher", Evasion, 0.3), ("encoded", Evasion, 0.3), ("decode*", Evasion, 0.3),
    ("decrypt*", Evasion, 0.3), ("backwards", Evasion, 0.3), ("reversed", Evasion, 0.3),
    ("reverse", Evasion, 0.3), ("mirrored", Evasion, 0.3),
    // Meta: text about attacks rather than an attack.
    ("prompt injection", Meta, 1.0), ("prompt injections", Meta, 1.0),
    ("injection attack*", Meta, 1.0), ("jailbreak attack*", Meta, 1.0),
    ("attacker*", Meta, 1.0), ("researcher*", Meta, 1.0), ("mitigat*", Meta, 1.0),
    ("detect*", Meta, 1.0), ("defen*", Meta, 1.0), ("vulnerab*", Meta, 1.0),
    ("owasp", Meta, 1.0), ("red team*", Meta, 1.0), ("adversarial", Meta, 1.0),
    ("this article", Meta, 1.0), ("blog post", Meta, 1.0), ("the paper", Meta, 1.0),
    ("classifier", Meta, 1.0), ("malicious prompts", Meta, 1.0),
];

/// Members of the word classes of [`COMBOS`].
#[rustfmt::skip]
pub const CLASSES: &[(&str, Class)] = &[
    // Drop verbs, in English and the other languages.
    ("ignore", Class::DropVerb), ("ignoring", Class::DropVerb), ("disregard", Class::DropVerb),
    ("disregarding", Class::DropVerb), ("forget", Class::DropVerb), ("forgetting", Class::DropVerb),
    ("override", Class::DropVerb), ("overriding", Class::DropVerb), ("bypass", Class::DropVerb),
    ("bypassing", Class::DropVerb), ("pay no attention to", Class::DropVerb),
    ("do not follow", Class::DropVerb), ("don t follow", Class::DropVerb),
    ("dont follow", Class::DropVerb), ("stop following", Class::DropVerb),
    ("no longer follow", Class::DropVerb), ("discard", Class::DropVerb),
    ("set aside", Class::DropVerb), ("abandon", Class::DropVerb), ("throw away", Class::DropVerb),
    ("unlearn", Class::DropVerb), ("free yourself from", Class::DropVerb),
    ("break free of", Class::DropVerb), ("break free from", Class::DropVerb),
    ("ignora", Class::DropVerb), ("ignorar", Class::DropVerb), ("ignorez", Class::DropVerb),
    ("ignoriere", Class::DropVerb), ("ignorieren", Class::DropVerb), ("vergiss", Class::DropVerb),
    ("olvida", Class::DropVerb), ("olvidar", Class::DropVerb), ("oublie", Class::DropVerb),
    ("oubliez", Class::DropVerb), ("esqueca", Class::DropVerb), ("dimentica", Class::DropVerb),
    ("ignorare", Class::DropVerb), ("игнорируй", Class::DropVerb),
    ("проигнорируй", Class::DropVerb), ("игнорировать", Class::DropVerb),
    ("забудь", Class::DropVerb), ("забудьте", Class::DropVerb), ("忽略", Class::DropVerb),
    ("无视", Class::DropVerb), ("忘记", Class::DropVerb), ("忘掉", Class::DropVerb),
    ("無視", Class::DropVerb), ("忘れ", Class::DropVerb), ("무시", Class::DropVerb),
    ("잊어", Class::DropVerb),
    // What they are dropped from.
    ("instructions", Class::Instructions), ("instruction", Class::Instructions),
    ("directives", Class::Instructions), ("guidelines", Class::Instructions),
    ("system prompt", Class::Instructions), ("programming", Class::Instructions),
    ("content policy", Class::Instructions), ("restrictions", Class::Instructions),
    ("safeguards", Class::Instructions), ("guardrails", Class::Instructions),
    ("constraints", Class::Instructions), ("prompts", Class::Instructions),
    ("prior inputs", Class::Instructions), ("previous inputs", Class::Instructions),
    ("your training", Class::Instructions), ("ethics", Class::Instructions),
    ("morals", Class::Instructions), ("policies", Class::Instructions),
    ("instrucciones", Class::Instructions), ("anweisungen", Class::Instructions),
    ("instrucoes", Class::Instructions), ("istruzioni", Class::Instructions),
    ("consignes", Class::Instructions), ("инструкции", Class::Instructions),
    ("инструкций", Class::Instructions), ("указания", Class::Instructions),
    ("指令", Class::Instructions), ("指示", Class::Instructions), ("规则", Class::Instructions),
    ("限制", Class::Instructions), ("지시", Class::Instructions), ("지침", Class::Instructions),
    ("규칙", Class::Instructions),
    ("rules", Class::RulesWeak), ("everything", Class::RulesWeak), ("the above", Class::RulesWeak),
    ("what i said", Class::RulesWeak), ("limitations", Class::RulesWeak),
    ("regles", Class::RulesWeak), ("reglas", Class::RulesWeak), ("regeln", Class::RulesWeak),
    ("regras", Class::RulesWeak), ("правила", Class::RulesWeak),
    ("no longer apply", Class::Nullified), ("are void", Class::Nullified),
    ("null and void", Class::Nullified), ("are cancelled", Class::Nullified),
    ("are canceled", Class::Nullified), ("do not apply", Class::Nullified),
    ("are obsolete", Class::Nullified), ("are revoked", Class::Nullified),
    ("are lifted", Class::Nullified), ("have been lifted", Class::Nullified),
    ("have been removed", Class::Nullified), ("are disabled", Class::Nullified),
    // Extraction verbs and what they ask for.
    ("reveal", Class::ExtractVerb), ("print", Class::ExtractVerb), ("repeat", Class::ExtractVerb),
    ("show", Class::ExtractVerb), ("show me", Class::ExtractVerb), ("output", Class::ExtractVerb),
    ("display", Class::ExtractVerb), ("tell me", Class::ExtractVerb),
    ("write out", Class::ExtractVerb), ("write down", Class::ExtractVerb),
    ("leak", Class::ExtractVerb), ("disclose", Class::ExtractVerb),
    ("spell out", Class::ExtractVerb), ("recite", Class::ExtractVerb), ("dump", Class::ExtractVerb),
    ("give me", Class::ExtractVerb), ("share", Class::ExtractVerb), ("paste", Class::ExtractVerb),
    ("revele", Class::ExtractVerb), ("montre", Class::ExtractVerb), ("affiche", Class::ExtractVerb),
    ("revela", Class::ExtractVerb), ("muestra", Class::ExtractVerb), ("zeige", Class::ExtractVerb),
    ("zeig", Class::ExtractVerb), ("mostre", Class::ExtractVerb), ("mostra", Class::ExtractVerb),
    ("покажи", Class::ExtractVerb), ("выведи", Class::ExtractVerb), ("раскрой", Class::ExtractVerb),
    ("显示", Class::ExtractVerb), ("输出", Class::ExtractVerb), ("告诉我", Class::ExtractVerb),
    ("打印", Class::ExtractVerb), ("重复", Class::ExtractVerb), ("表示", Class::ExtractVerb),
    ("教えて", Class::ExtractVerb), ("出力", Class::ExtractVerb), ("보여줘", Class::ExtractVerb),
    ("출력", Class::ExtractVerb), ("알려줘", Class::ExtractVerb),
    ("system prompt", Class::SecretText), ("your prompt", Class::SecretText),
    ("your instructions", Class::SecretText), ("your initial instructions", Class::SecretText),
    ("initial prompt", Class::SecretText), ("original prompt", Class::SecretText),
    ("hidden prompt", Class::SecretText), ("secret instructions", Class::SecretText),
    ("hidden instructions", Class::SecretText), ("pre prompt", Class::SecretText),
    ("preprompt", Class::SecretText), ("the text above", Class::SecretText),
    ("the words above", Class::SecretText), ("everything above", Class::SecretText),
    ("all text above", Class::SecretText), ("above this line", Class::SecretText),
    ("developer message", Class::SecretText), ("your rules", Class::SecretText),
    ("your guidelines", Class::SecretText), ("your configuration", Class::SecretText),
    ("instructions you were given", Class::SecretText),
    ("beginning of the conversation", Class::SecretText), ("your first message", Class::SecretText),
    ("prompt systeme", Class::SecretText), ("prompt del sistema", Class::SecretText),
    ("tus instrucciones", Class::SecretText), ("systemprompt", Class::SecretText),
    ("deine anweisungen", Class::SecretText), ("системный промпт", Class::SecretText),
    ("свои инструкции", Class::SecretText), ("系统提示", Class::SecretText),
    ("提示词", Class::SecretText), ("你的指令", Class::SecretText),
    ("システムプロンプト", Class::SecretText), ("시스템 프롬프트", Class::SecretText),
    // Modes switched on.
    ("debug mode", Class::ModeName), ("debugging mode", Class::ModeName), ("admin mode", Class::ModeName), ("god mode", Class::ModeName),
    ("sudo mode", Class::ModeName), ("maintenance mode", Class::ModeName),
    ("unrestricted mode", Class::ModeName), ("developer mode", Class::ModeName),
    ("enabled", Class::Activated), ("activated", Class::Activated), ("on", Class::Activated),
    ("engaged", Class::Activated), ("unlocked", Class::Activated),
];
