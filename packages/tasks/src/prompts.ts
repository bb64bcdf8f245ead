/**
 * Per-language instruction templates of the generative X-CSQA and XQuAD tasks. The English ones reproduce the
 * paper's prompts character for character (see `../shared/data/paper-samples`); every other language is OUR OWN
 * translation, written for this project — not the paper's templates, which it did not publish in this form.
 * The answer letters of X-CSQA stay Latin A–E in every language, and every assistant turn opens with an ASCII
 * double quote, so the model's first token is the answer.
 */
import { renderJinja } from './jinja.js';

export interface XcsqaPrompt {
  /** What to do and how to answer. */
  intro: string;
  /** The heading before the question, colon included (`Question:`). */
  question: string;
  /** The heading before the options (`Options:`). */
  options: string;
}

export interface XquadPrompt {
  intro: string;
  /** Heading before the passage (`Passage:`). */
  passage: string;
  /** Heading before the question (`Question:`). */
  question: string;
  /** The closing note after the question. */
  note: string;
  /** What the assistant turn opens with, ending in the opening quote. */
  answerPrefix: string;
}

/** The paper's English X-CSQA prompt and our translations (see the module comment). */
export const XCSQA_PROMPTS: Readonly<Record<string, XcsqaPrompt>> = {
  en: {
    intro:
      'You will be presented with a question that has multiple possible answers. Choose the most suitable option out of "A", "B", "C", "D" or "E" based on your commonsense knowledge. Please provide your answer in the form of a single letter in quotation marks.',
    question: 'Question:',
    options: 'Options:',
  },
  de: {
    intro:
      'Dir wird eine Frage mit mehreren möglichen Antworten gestellt. Wähle auf Grundlage deines Allgemeinwissens die passendste Option aus "A", "B", "C", "D" oder "E". Gib deine Antwort als einzelnen Buchstaben in Anführungszeichen an.',
    question: 'Frage:',
    options: 'Optionen:',
  },
  es: {
    intro:
      'Se te presentará una pregunta con varias respuestas posibles. Elige la opción más adecuada entre "A", "B", "C", "D" o "E" basándote en tu sentido común. Da tu respuesta como una sola letra entre comillas.',
    question: 'Pregunta:',
    options: 'Opciones:',
  },
  fr: {
    intro:
      'Voici une question qui admet plusieurs réponses possibles. En te fondant sur ton bon sens, choisis l\'option la plus appropriée parmi "A", "B", "C", "D" ou "E". Donne ta réponse sous la forme d\'une seule lettre entre guillemets.',
    question: 'Question :',
    options: 'Options :',
  },
  it: {
    intro:
      'Ti verrà posta una domanda con più risposte possibili. Scegli l\'opzione più adatta tra "A", "B", "C", "D" o "E" in base al tuo buon senso. Indica la risposta con una sola lettera tra virgolette.',
    question: 'Domanda:',
    options: 'Opzioni:',
  },
  pt: {
    intro:
      'Você verá uma pergunta com várias respostas possíveis. Escolha a opção mais adequada entre "A", "B", "C", "D" ou "E" com base no seu senso comum. Dê a sua resposta na forma de uma única letra entre aspas.',
    question: 'Pergunta:',
    options: 'Opções:',
  },
  nl: {
    intro:
      'Je krijgt een vraag met meerdere mogelijke antwoorden. Kies op basis van je gezond verstand de meest geschikte optie uit "A", "B", "C", "D" of "E". Geef je antwoord als één letter tussen aanhalingstekens.',
    question: 'Vraag:',
    options: 'Opties:',
  },
  pl: {
    intro:
      'Otrzymasz pytanie z kilkoma możliwymi odpowiedziami. Na podstawie zdrowego rozsądku wybierz najodpowiedniejszą opcję spośród "A", "B", "C", "D" lub "E". Podaj odpowiedź w postaci jednej litery w cudzysłowie.',
    question: 'Pytanie:',
    options: 'Opcje:',
  },
  ru: {
    intro:
      'Вам будет задан вопрос с несколькими возможными ответами. Исходя из здравого смысла, выберите наиболее подходящий вариант из "A", "B", "C", "D" или "E". Дайте ответ в виде одной буквы в кавычках.',
    question: 'Вопрос:',
    options: 'Варианты:',
  },
  bg: {
    intro:
      'Ще ви бъде зададен въпрос с няколко възможни отговора. Въз основа на здравия си разум изберете най-подходящия вариант от "A", "B", "C", "D" или "E". Дайте отговора си като една буква в кавички.',
    question: 'Въпрос:',
    options: 'Варианти:',
  },
  el: {
    intro:
      'Θα σας δοθεί μια ερώτηση με πολλές πιθανές απαντήσεις. Με βάση την κοινή λογική, επιλέξτε την καταλληλότερη επιλογή από τις "A", "B", "C", "D" ή "E". Δώστε την απάντησή σας ως ένα μόνο γράμμα σε εισαγωγικά.',
    question: 'Ερώτηση:',
    options: 'Επιλογές:',
  },
  is: {
    intro:
      'Þú færð spurningu sem hefur nokkur möguleg svör. Veldu þann kost sem best á við út frá almennri skynsemi: "A", "B", "C", "D" eða "E". Svaraðu með einum staf innan gæsalappa.',
    question: 'Spurning:',
    options: 'Valkostir:',
  },
  ro: {
    intro:
      'Vi se va adresa o întrebare cu mai multe răspunsuri posibile. Pe baza bunului simț, alegeți varianta cea mai potrivită dintre "A", "B", "C", "D" sau "E". Dați răspunsul sub forma unei singure litere între ghilimele.',
    question: 'Întrebare:',
    options: 'Variante:',
  },
  tr: {
    intro:
      'Size birden fazla olası cevabı olan bir soru sorulacak. Sağduyunuza dayanarak "A", "B", "C", "D" veya "E" seçeneklerinden en uygun olanını seçin. Cevabınızı tırnak işaretleri içinde tek bir harf olarak verin.',
    question: 'Soru:',
    options: 'Seçenekler:',
  },
  zh: {
    intro:
      '下面是一道有多个可能答案的题目。请根据常识，从"A"、"B"、"C"、"D"或"E"中选出最合适的选项，并只用引号中的一个字母作答。',
    question: '问题：',
    options: '选项：',
  },
  ja: {
    intro:
      'これから複数の答えが考えられる質問を出します。常識に基づいて、"A"、"B"、"C"、"D"、"E"の中から最も適切な選択肢を選んでください。答えは引用符で囲んだ1文字で示してください。',
    question: '質問：',
    options: '選択肢：',
  },
  hi: {
    intro:
      'आपसे एक प्रश्न पूछा जाएगा जिसके कई संभावित उत्तर हैं। अपनी सामान्य समझ के आधार पर "A", "B", "C", "D" या "E" में से सबसे उपयुक्त विकल्प चुनें। अपना उत्तर उद्धरण चिह्नों में एक अक्षर के रूप में दें।',
    question: 'प्रश्न:',
    options: 'विकल्प:',
  },
  ar: {
    intro:
      'سيُطرح عليك سؤال له عدة إجابات محتملة. اختر الخيار الأنسب من بين "A" و"B" و"C" و"D" و"E" بناءً على معرفتك العامة. اكتب إجابتك على شكل حرف واحد بين علامتي اقتباس.',
    question: 'السؤال:',
    options: 'الخيارات:',
  },
  vi: {
    intro:
      'Bạn sẽ được hỏi một câu hỏi có nhiều đáp án khả dĩ. Dựa trên hiểu biết thông thường, hãy chọn phương án phù hợp nhất trong số "A", "B", "C", "D" hoặc "E". Hãy trả lời bằng một chữ cái duy nhất đặt trong dấu ngoặc kép.',
    question: 'Câu hỏi:',
    options: 'Các phương án:',
  },
  th: {
    intro:
      'คุณจะได้รับคำถามที่มีคำตอบที่เป็นไปได้หลายข้อ ให้เลือกตัวเลือกที่เหมาะสมที่สุดจาก "A", "B", "C", "D" หรือ "E" โดยอาศัยสามัญสำนึกของคุณ และตอบเป็นตัวอักษรเพียงตัวเดียวในเครื่องหมายคำพูด',
    question: 'คำถาม:',
    options: 'ตัวเลือก:',
  },
};

/** The paper's English XQuAD prompt and our translations (see the module comment). */
export const XQUAD_PROMPTS: Readonly<Record<string, XquadPrompt>> = {
  en: {
    intro:
      'Answer the question from the given passage. Your answer should be directly extracted from the passage, and it should be a single entity, name, or number, not a sentence.',
    passage: 'Passage:',
    question: 'Question:',
    note: 'Note: Your answer should be directly extracted from the passage and be a single entity, name, or number. Provide the answer in quotations.',
    answerPrefix: 'Based on the passage, the answer to the question is "',
  },
  de: {
    intro:
      'Beantworte die Frage anhand des gegebenen Textes. Deine Antwort soll direkt aus dem Text übernommen werden und eine einzelne Entität, ein Name oder eine Zahl sein, kein Satz.',
    passage: 'Text:',
    question: 'Frage:',
    note: 'Hinweis: Deine Antwort soll direkt aus dem Text übernommen werden und eine einzelne Entität, ein Name oder eine Zahl sein. Gib die Antwort in Anführungszeichen an.',
    answerPrefix: 'Basierend auf dem Text lautet die Antwort auf die Frage "',
  },
  es: {
    intro:
      'Responde a la pregunta a partir del pasaje dado. Tu respuesta debe extraerse directamente del pasaje y ser una sola entidad, nombre o número, no una oración.',
    passage: 'Pasaje:',
    question: 'Pregunta:',
    note: 'Nota: tu respuesta debe extraerse directamente del pasaje y ser una sola entidad, nombre o número. Escribe la respuesta entre comillas.',
    answerPrefix: 'Según el pasaje, la respuesta a la pregunta es "',
  },
  fr: {
    intro:
      'Réponds à la question à partir du passage donné. Ta réponse doit être extraite directement du passage et consister en une seule entité, un nom ou un nombre, pas une phrase.',
    passage: 'Passage :',
    question: 'Question :',
    note: 'Remarque : ta réponse doit être extraite directement du passage et consister en une seule entité, un nom ou un nombre. Donne la réponse entre guillemets.',
    answerPrefix: 'D\'après le passage, la réponse à la question est "',
  },
  it: {
    intro:
      'Rispondi alla domanda in base al brano fornito. La risposta deve essere estratta direttamente dal brano e consistere in una sola entità, un nome o un numero, non una frase.',
    passage: 'Brano:',
    question: 'Domanda:',
    note: 'Nota: la risposta deve essere estratta direttamente dal brano ed essere una sola entità, un nome o un numero. Scrivi la risposta tra virgolette.',
    answerPrefix: 'In base al brano, la risposta alla domanda è "',
  },
  pt: {
    intro:
      'Responda à pergunta com base na passagem fornecida. A sua resposta deve ser extraída diretamente da passagem e ser uma única entidade, nome ou número, não uma frase.',
    passage: 'Passagem:',
    question: 'Pergunta:',
    note: 'Observação: a sua resposta deve ser extraída diretamente da passagem e ser uma única entidade, nome ou número. Escreva a resposta entre aspas.',
    answerPrefix: 'Com base na passagem, a resposta à pergunta é "',
  },
  nl: {
    intro:
      'Beantwoord de vraag aan de hand van de gegeven tekst. Je antwoord moet rechtstreeks uit de tekst komen en één entiteit, naam of getal zijn, geen zin.',
    passage: 'Tekst:',
    question: 'Vraag:',
    note: 'Let op: je antwoord moet rechtstreeks uit de tekst komen en één entiteit, naam of getal zijn. Geef het antwoord tussen aanhalingstekens.',
    answerPrefix: 'Volgens de tekst is het antwoord op de vraag "',
  },
  pl: {
    intro:
      'Odpowiedz na pytanie na podstawie podanego fragmentu. Odpowiedź powinna pochodzić bezpośrednio z fragmentu i być pojedynczym pojęciem, nazwą lub liczbą, a nie zdaniem.',
    passage: 'Fragment:',
    question: 'Pytanie:',
    note: 'Uwaga: odpowiedź powinna pochodzić bezpośrednio z fragmentu i być pojedynczym pojęciem, nazwą lub liczbą. Podaj odpowiedź w cudzysłowie.',
    answerPrefix: 'Na podstawie fragmentu odpowiedź na pytanie to "',
  },
  ru: {
    intro:
      'Ответьте на вопрос по данному тексту. Ответ должен быть взят непосредственно из текста и представлять собой одну сущность, имя или число, а не предложение.',
    passage: 'Текст:',
    question: 'Вопрос:',
    note: 'Примечание: ответ должен быть взят непосредственно из текста и представлять собой одну сущность, имя или число. Дайте ответ в кавычках.',
    answerPrefix: 'Согласно тексту, ответ на вопрос: "',
  },
  bg: {
    intro:
      'Отговорете на въпроса въз основа на дадения текст. Отговорът трябва да бъде взет директно от текста и да бъде едно понятие, име или число, а не изречение.',
    passage: 'Текст:',
    question: 'Въпрос:',
    note: 'Забележка: отговорът трябва да бъде взет директно от текста и да бъде едно понятие, име или число. Дайте отговора в кавички.',
    answerPrefix: 'Според текста отговорът на въпроса е "',
  },
  el: {
    intro:
      'Απαντήστε στην ερώτηση με βάση το δοσμένο κείμενο. Η απάντησή σας πρέπει να προέρχεται απευθείας από το κείμενο και να είναι μία οντότητα, ένα όνομα ή ένας αριθμός, όχι πρόταση.',
    passage: 'Κείμενο:',
    question: 'Ερώτηση:',
    note: 'Σημείωση: η απάντησή σας πρέπει να προέρχεται απευθείας από το κείμενο και να είναι μία οντότητα, ένα όνομα ή ένας αριθμός. Δώστε την απάντηση σε εισαγωγικά.',
    answerPrefix: 'Με βάση το κείμενο, η απάντηση στην ερώτηση είναι "',
  },
  is: {
    intro:
      'Svaraðu spurningunni út frá textanum. Svarið á að vera tekið beint úr textanum og vera eitt heiti, nafn eða tala, ekki setning.',
    passage: 'Texti:',
    question: 'Spurning:',
    note: 'Athugið: Svarið á að vera tekið beint úr textanum og vera eitt heiti, nafn eða tala. Settu svarið innan gæsalappa.',
    answerPrefix: 'Samkvæmt textanum er svarið við spurningunni "',
  },
  ro: {
    intro:
      'Răspundeți la întrebare pe baza pasajului dat. Răspunsul trebuie extras direct din pasaj și trebuie să fie o singură entitate, un nume sau un număr, nu o propoziție.',
    passage: 'Pasaj:',
    question: 'Întrebare:',
    note: 'Notă: răspunsul trebuie extras direct din pasaj și trebuie să fie o singură entitate, un nume sau un număr. Scrieți răspunsul între ghilimele.',
    answerPrefix: 'Pe baza pasajului, răspunsul la întrebare este "',
  },
  tr: {
    intro:
      'Soruyu verilen metne göre cevaplayın. Cevabınız doğrudan metinden alınmalı ve bir cümle değil, tek bir varlık, ad veya sayı olmalıdır.',
    passage: 'Metin:',
    question: 'Soru:',
    note: 'Not: Cevabınız doğrudan metinden alınmalı ve tek bir varlık, ad veya sayı olmalıdır. Cevabı tırnak işaretleri içinde verin.',
    answerPrefix: 'Metne göre sorunun cevabı "',
  },
  zh: {
    intro: '请根据给定的段落回答问题。答案应直接摘自段落，并且是单个实体、名称或数字，而不是句子。',
    passage: '段落：',
    question: '问题：',
    note: '注意：答案应直接摘自段落，并且是单个实体、名称或数字。请把答案放在引号中。',
    answerPrefix: '根据段落，问题的答案是"',
  },
  ja: {
    intro:
      '与えられた文章に基づいて質問に答えてください。答えは文章からそのまま抜き出した、1つの実体、名前、または数字でなければならず、文であってはいけません。',
    passage: '文章：',
    question: '質問：',
    note: '注意：答えは文章からそのまま抜き出した、1つの実体、名前、または数字にしてください。答えは引用符で囲んでください。',
    answerPrefix: '文章によると、質問の答えは"',
  },
  hi: {
    intro:
      'दिए गए अनुच्छेद के आधार पर प्रश्न का उत्तर दें। आपका उत्तर सीधे अनुच्छेद से लिया जाना चाहिए और एक ही इकाई, नाम या संख्या होना चाहिए, वाक्य नहीं।',
    passage: 'अनुच्छेद:',
    question: 'प्रश्न:',
    note: 'ध्यान दें: आपका उत्तर सीधे अनुच्छेद से लिया जाना चाहिए और एक ही इकाई, नाम या संख्या होना चाहिए। उत्तर उद्धरण चिह्नों में दें।',
    answerPrefix: 'अनुच्छेद के अनुसार, प्रश्न का उत्तर है "',
  },
  ar: {
    intro:
      'أجب عن السؤال استنادًا إلى النص المعطى. يجب أن تكون إجابتك مأخوذة مباشرة من النص، وأن تكون كيانًا أو اسمًا أو رقمًا واحدًا، لا جملة.',
    passage: 'النص:',
    question: 'السؤال:',
    note: 'ملاحظة: يجب أن تكون إجابتك مأخوذة مباشرة من النص وأن تكون كيانًا أو اسمًا أو رقمًا واحدًا. اكتب الإجابة بين علامتي اقتباس.',
    answerPrefix: 'بناءً على النص، الإجابة عن السؤال هي "',
  },
  vi: {
    intro:
      'Hãy trả lời câu hỏi dựa trên đoạn văn cho sẵn. Câu trả lời phải được trích trực tiếp từ đoạn văn và là một thực thể, tên hoặc con số duy nhất, không phải một câu.',
    passage: 'Đoạn văn:',
    question: 'Câu hỏi:',
    note: 'Lưu ý: Câu trả lời phải được trích trực tiếp từ đoạn văn và là một thực thể, tên hoặc con số duy nhất. Hãy đặt câu trả lời trong dấu ngoặc kép.',
    answerPrefix: 'Dựa trên đoạn văn, câu trả lời cho câu hỏi là "',
  },
  th: {
    intro: 'ตอบคำถามจากข้อความที่ให้มา คำตอบของคุณต้องดึงมาจากข้อความโดยตรง และต้องเป็นสิ่งเดียว ชื่อ หรือตัวเลข ไม่ใช่ประโยค',
    passage: 'ข้อความ:',
    question: 'คำถาม:',
    note: 'หมายเหตุ: คำตอบของคุณต้องดึงมาจากข้อความโดยตรง และต้องเป็นสิ่งเดียว ชื่อ หรือตัวเลข ใส่คำตอบในเครื่องหมายคำพูด',
    answerPrefix: 'จากข้อความ คำตอบของคำถามคือ "',
  },
};

/** The paper's chat prompt (`data/prompts/guanaco_prompt.txt`): no space before the second `###`. */
export const GUANACO_PROMPT = '### Human: {{ instruction }}### Assistant:';

/**
 * The whole prompt: the chat template (Jinja with `{{ instruction }}`; default {@link GUANACO_PROMPT}) rendered with
 * the instruction, then — where the assistant turn opens with text — a space and that text. With the guanaco
 * template this is `### Human: {instruction}### Assistant: {prefix}`, as the paper's prompts are.
 */
export function renderPrompt(instruction: string, assistantPrefix = '', template = GUANACO_PROMPT): string {
  const head = renderJinja(template, { instruction }, 'prompt template');
  return assistantPrefix === '' ? head : `${head} ${assistantPrefix}`;
}

/** Options as the X-CSQA prompt lists them: `A: town\nB: michigan…`. */
export function formatOptions(options: readonly string[]): string {
  return options.map((o, i) => `${String.fromCharCode(65 + i)}: ${o}`).join('\n');
}

/** The X-CSQA instruction (the user turn) in a prompt language. */
export function xcsqaInstruction(p: XcsqaPrompt, question: string, options: readonly string[]): string {
  return `${p.intro}\n\n${p.question}\n\n${question}\n\n${p.options}\n\n${formatOptions(options)}\n\n`;
}

/** The XQuAD instruction (the user turn) in a prompt language. */
export function xquadInstruction(p: XquadPrompt, passage: string, question: string): string {
  return `${p.intro}\n\n${p.passage}\n\n${passage}\n\n${p.question}\n\n${question}\n\n${p.note}`;
}
