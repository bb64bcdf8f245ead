import { expect } from 'chai';
import {
  isPolyglotError,
  type LabelScheme,
  LidError,
  listLanguages,
  normalizeLang,
  registerLanguage,
  sameLanguage,
  toLabel,
} from '../src/index.js';

// The labels of fastText's lid.176 model, as published with it.
const LID176 =
  'af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh'.split(
    ' ',
  );

// The 201 labels of OpenLID (lid201), from its languages.md.
const OPENLID =
  'ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab als_Latn amh_Ethi apc_Arab arb_Arab ars_Arab ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn bak_Cyrl bam_Latn ban_Latn bel_Cyrl bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt bos_Latn bug_Latn bul_Cyrl cat_Latn ceb_Latn ces_Latn cjk_Latn ckb_Arab crh_Latn cym_Latn dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt ell_Grek eng_Latn epo_Latn est_Latn eus_Latn ewe_Latn fao_Latn fij_Latn fin_Latn fon_Latn fra_Latn fur_Latn fuv_Latn gaz_Latn gla_Latn gle_Latn glg_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kab_Latn kac_Latn kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor kaz_Cyrl kbp_Latn kea_Latn khk_Cyrl khm_Khmr kik_Latn kin_Latn kir_Cyrl kmb_Latn kmr_Latn knc_Arab knc_Latn kon_Latn kor_Hang lao_Laoo lij_Latn lim_Latn lin_Latn lit_Latn lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn luo_Latn lus_Latn lvs_Latn mag_Deva mai_Deva mal_Mlym mar_Deva min_Latn mkd_Cyrl mlt_Latn mni_Beng mos_Latn mri_Latn mya_Mymr nld_Latn nno_Latn nob_Latn npi_Deva nso_Latn nus_Latn nya_Latn oci_Latn ory_Orya pag_Latn pan_Guru pap_Latn pbt_Arab pes_Arab plt_Latn pol_Latn por_Latn prs_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Olck scn_Latn shn_Mymr sin_Sinh slk_Latn slv_Latn smo_Latn sna_Latn snd_Arab som_Latn sot_Latn spa_Latn srd_Latn srp_Cyrl ssw_Latn sun_Latn swe_Latn swh_Latn szl_Latn tam_Taml taq_Latn taq_Tfng tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi tpi_Latn tsn_Latn tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn urd_Arab uzn_Latn vec_Latn vie_Latn war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans zho_Hant zsm_Latn zul_Latn'.split(
    ' ',
  );

const PAPER = 'en bg ca da de el es fi fr hi hu is ko no ru sv vi zh'.split(' ');
const XQUAD = 'ar de el en es hi ro ru th tr vi zh'.split(' ');
const SCHEMES: LabelScheme[] = ['lid176', 'openlid', 'glotlid'];

function expectLidError(fn: () => unknown, code: string, mention?: string): LidError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').to.be.instanceOf(LidError);
  expect(isPolyglotError(caught)).to.equal(true);
  const err = caught as LidError;
  expect(err.code).to.equal(code);
  if (mention) expect(err.message).to.include(mention);
  return err;
}

describe('language codes', () => {
  it('the reference lists are complete', () => {
    expect(LID176).to.have.length(176);
    expect(new Set(OPENLID).size).to.equal(201);
  });

  it('maps German across every convention', () => {
    const de = normalizeLang('de');
    expect(de).to.deep.include({ iso1: 'de', iso3: 'deu', script: 'Latn', key: 'deu_Latn', group: 'deu' });
    for (const form of [
      'deu',
      'deu_Latn',
      'DE',
      'deu_latn',
      'de-DE',
      'de_Latn',
      '__label__de',
      '__label__deu_Latn',
    ]) {
      expect(normalizeLang(form).key, form).to.equal('deu_Latn');
    }
    expect(toLabel('de', 'lid176')).to.equal('__label__de');
    expect(toLabel('de', 'openlid')).to.equal('__label__deu_Latn');
    expect(toLabel('__label__deu_Latn', 'glotlid')).to.equal('__label__deu_Latn');
  });

  it('maps Bulgarian (lost by the original code) to bul_Cyrl and back', () => {
    expect(normalizeLang('bg')).to.deep.include({ iso3: 'bul', script: 'Cyrl', key: 'bul_Cyrl' });
    expect(normalizeLang('__label__bul_Cyrl').iso1).to.equal('bg');
    expect(toLabel('bul_Cyrl', 'lid176')).to.equal('__label__bg');
    expect(sameLanguage('__label__bg', '__label__bul_Cyrl')).to.equal(true);
  });

  it('maps Chinese: zh, zho_Hans, zho_Hant (OpenLID) and cmn_Hani (GlotLID)', () => {
    expect(normalizeLang('zh')).to.deep.include({ iso1: 'zh', iso3: 'zho', script: 'Hans', key: 'zho_Hans' });
    expect(normalizeLang('__label__zho_Hant')).to.deep.include({ iso3: 'zho', script: 'Hant' });
    expect(normalizeLang('zh-Hant').key).to.equal('zho_Hant');
    expect(normalizeLang('__label__cmn_Hani')).to.deep.include({ iso3: 'cmn', script: 'Hani', group: 'zho' });
    for (const other of ['zho_Hans', 'zho_Hant', 'cmn_Hani', '__label__zh', 'cmn']) {
      expect(sameLanguage('zh', other), other).to.equal(true);
    }
    expect(sameLanguage('zh', 'yue')).to.equal(false);
    expect(toLabel('zh', 'lid176')).to.equal('__label__zh');
    expect(toLabel('zh', 'openlid')).to.equal('__label__zho_Hans');
    expect(toLabel('zh', 'glotlid')).to.equal('__label__cmn_Hani');
    expect(toLabel('zho_Hant', 'lid176')).to.equal('__label__zh');
    expect(toLabel('zho_Hant', 'openlid')).to.equal('__label__zho_Hant');
    expect(toLabel('cmn_Hani', 'openlid')).to.equal('__label__zho_Hans');
  });

  it('maps Norwegian: no and nb are Bokmål, nn is Nynorsk', () => {
    for (const form of ['no', 'nb', 'nob', 'nor', 'nob_Latn', '__label__no', '__label__nob_Latn']) {
      expect(normalizeLang(form).key, form).to.equal('nob_Latn');
    }
    expect(normalizeLang('nn').key).to.equal('nno_Latn');
    expect(normalizeLang('__label__nn').key).to.equal('nno_Latn');
    expect(sameLanguage('no', 'nb')).to.equal(true);
    expect(sameLanguage('no', 'nn')).to.equal(false);
    expect(sameLanguage('nb', 'nno_Latn')).to.equal(false);
    expect(toLabel('nb', 'lid176')).to.equal('__label__no');
    expect(toLabel('no', 'openlid')).to.equal('__label__nob_Latn');
    expect(toLabel('nn', 'glotlid')).to.equal('__label__nno_Latn');
  });

  it('reads GlotLID labels of merged macrolanguages', () => {
    expect(normalizeLang('__label__ekk_Latn').iso1).to.equal('et');
    expect(normalizeLang('__label__fas_Arab').iso1).to.equal('fa');
    expect(sameLanguage('__label__prs_Arab', 'fa')).to.equal(true);
    expect(normalizeLang('__label__yue_Hani').key).to.equal('yue_Hant');
    expect(toLabel('et', 'glotlid')).to.equal('__label__ekk_Latn');
    expect(toLabel('et', 'openlid')).to.equal('__label__est_Latn');
  });

  it('tells lid.176 als (Alemannic) from ISO 639-3 als (Tosk Albanian)', () => {
    expect(normalizeLang('__label__als').key).to.equal('gsw_Latn');
    expect(normalizeLang('als').key).to.equal('als_Latn');
    expect(normalizeLang('__label__als_Latn').iso1).to.equal('sq');
    expect(toLabel('sq', 'lid176')).to.equal('__label__sq');
    expect(toLabel('gsw', 'lid176')).to.equal('__label__als');
  });

  it('knows every language of the paper and of XQuAD in all three schemes, round trip included', () => {
    for (const code of new Set([...PAPER, ...XQUAD])) {
      const lang = normalizeLang(code);
      for (const scheme of SCHEMES) {
        const label = toLabel(code, scheme);
        expect(label, `${code} ${scheme}`).to.match(/^__label__[a-z]{2,3}(_[A-Z][a-z]{3})?$/);
        expect(sameLanguage(label, code), `${code} ${scheme} ${label}`).to.equal(true);
        expect(toLabel(label, scheme)).to.equal(label);
      }
      expect(normalizeLang(lang.key)).to.deep.equal(lang);
    }
  });

  it('round-trips all 176 lid.176 labels', () => {
    const keys = new Set<string>();
    for (const code of LID176) {
      const lang = normalizeLang(`__label__${code}`);
      keys.add(lang.key);
      expect(toLabel(lang.key, 'lid176'), code).to.equal(`__label__${code}`);
    }
    expect(keys.size).to.equal(176);
  });

  it('round-trips all 201 OpenLID labels', () => {
    for (const label of OPENLID) {
      const lang = normalizeLang(`__label__${label}`);
      expect(toLabel(lang.key, 'openlid'), label).to.equal(`__label__${label}`);
    }
  });

  it('lists the table with unique keys', () => {
    const all = listLanguages();
    expect(all.length).to.be.greaterThan(250);
    expect(new Set(all.map((l) => l.key)).size).to.equal(all.length);
  });

  it('raises on unknown or malformed codes instead of missing silently', () => {
    for (const bad of [
      'xx',
      'qqq',
      '__label__qqq',
      'deu_Cyrl',
      '__label__xyz_Latn',
      '',
      'english',
      'de-',
      'd',
    ]) {
      expectLidError(() => normalizeLang(bad), 'unknown-language', JSON.stringify(bad));
    }
    expectLidError(() => normalizeLang(42 as unknown as string), 'unknown-language');
    expectLidError(() => sameLanguage('de', 'xx'), 'unknown-language', '"xx"');
    expectLidError(() => toLabel('xx', 'lid176'), 'unknown-language');
    expectLidError(() => toLabel('de', 'fasttext' as LabelScheme), 'bad-scheme');
  });

  it('raises no-label where a scheme lacks the language', () => {
    expectLidError(() => toLabel('zul_Latn', 'lid176'), 'no-label', 'zul_Latn');
    expectLidError(() => toLabel('__label__jbo', 'openlid'), 'no-label', 'Lojban');
  });

  it('lets a user register a language and extend an existing one', () => {
    expectLidError(() => normalizeLang('tlh'), 'unknown-language');
    const tlh = registerLanguage({ iso3: 'tlh', script: 'Latn', name: 'Klingon', glotlid: 'tlh_Latn' });
    expect(tlh).to.deep.include({ key: 'tlh_Latn', group: 'tlh' });
    expect(normalizeLang('__label__tlh_Latn').name).to.equal('Klingon');
    expect(toLabel('tlh', 'glotlid')).to.equal('__label__tlh_Latn');
    expectLidError(() => toLabel('tlh', 'lid176'), 'no-label');

    expectLidError(() => toLabel('jbo', 'glotlid'), 'no-label');
    expectLidError(
      () => registerLanguage({ iso3: 'jbo', script: 'Latn', name: 'Lojban', glotlid: 'jbo_Latn' }),
      'duplicate-language',
      'replace',
    );
    registerLanguage(
      { iso3: 'jbo', script: 'Latn', name: 'Lojban', lid176: 'jbo', glotlid: 'jbo_Latn' },
      { replace: true },
    );
    expect(toLabel('__label__jbo', 'glotlid')).to.equal('__label__jbo_Latn');
    expect(toLabel('jbo_Latn', 'lid176')).to.equal('__label__jbo');
  });

  it('rejects malformed registrations', () => {
    expectLidError(
      () => registerLanguage({ iso3: 'TLH', script: 'Latn', name: 'x' }),
      'bad-language-spec',
      'iso3',
    );
    expectLidError(
      () => registerLanguage({ iso3: 'abc', script: 'latin', name: 'x' }),
      'bad-language-spec',
      'script',
    );
    expectLidError(
      () => registerLanguage({ iso3: 'abc', script: 'Latn', name: '' }),
      'bad-language-spec',
      'name',
    );
    expectLidError(
      () => registerLanguage({ iso3: 'abc', script: 'Latn', name: 'x', openlid: 'abc-Latn' }),
      'bad-language-spec',
      'openlid',
    );
    expectLidError(() => normalizeLang('abc'), 'unknown-language');
  });
});
