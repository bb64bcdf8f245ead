/**
 * The built-in language table. One row per language variety (ISO 639-3 code + ISO 15924 script):
 *
 *   key  iso1  lid176  openlid  glotlid  group  aliases | English name
 *
 * - key: `iso3_Script`, the variety's canonical id.
 * - iso1: ISO 639-1 code. lid176: the code of fastText's lid.176 model (`__label__de`). openlid / glotlid: the
 *   label of OpenLID (lid201, FLORES-200 style) and GlotLID v3; `=` means the same as the key.
 * - group: the identity `sameLanguage` compares (defaults to the ISO 639-3 code): the Chinese varieties are
 *   group `zho`, Arabic varieties `ara`, Iranian Persian and Dari `fas`.
 * - aliases: further codes that name this variety (macrolanguage codes such as `nor`, `msa`, `est`'s `ekk`).
 * `-` marks an empty field. The first row that carries a code is that code's default (e.g. `zh` → zho_Hans).
 *
 * Sources: the lid.176 label list published with fastText; the OpenLID language list (languages.md of
 * laurieburchell/open-lid-dataset); GlotLID v3 merges macrolanguages into individual languages (est → ekk,
 * zho → cmn_Hani, grn → gug, kon → ktu, pes/prs → fas) and otherwise shares FLORES-200 labels. GlotLID labels of
 * languages that OpenLID lacks are only given where checked; register more with `registerLanguage`.
 */
export const LANGUAGE_TABLE = `
afr_Latn af  af  = = - - | Afrikaans
gsw_Latn -   als - - - - | Alemannic German
amh_Ethi am  am  = = - - | Amharic
arg_Latn an  an  - = - - | Aragonese
arb_Arab ar  ar  = = ara ara | Arabic
arz_Arab -   arz = = ara - | Egyptian Arabic
asm_Beng as  as  = = - - | Assamese
ast_Latn -   ast = = - - | Asturian
ava_Cyrl av  av  - - - - | Avaric
azj_Latn az  az  = = - aze | North Azerbaijani
azb_Arab -   azb = = - - | South Azerbaijani
bak_Cyrl ba  ba  = = - - | Bashkir
bar_Latn -   bar - - - - | Bavarian
bcl_Latn -   bcl - - - - | Central Bikol
bel_Cyrl be  be  = = - - | Belarusian
bul_Cyrl bg  bg  = = - - | Bulgarian
bih_Deva bh  bh  - - - - | Bihari languages
ben_Beng bn  bn  = = - - | Bengali
bod_Tibt bo  bo  = = - - | Tibetan
bpy_Beng -   bpy - - - - | Bishnupriya
bre_Latn br  br  - - - - | Breton
bos_Latn bs  bs  = = - - | Bosnian
bxr_Cyrl -   bxr - - - - | Russia Buriat
cat_Latn ca  ca  = = - - | Catalan
cbk_Latn -   cbk - - - - | Chavacano
che_Cyrl ce  ce  - - - - | Chechen
ceb_Latn -   ceb = = - - | Cebuano
ckb_Arab -   ckb = = - - | Central Kurdish
cos_Latn co  co  - - - - | Corsican
ces_Latn cs  cs  = = - - | Czech
chv_Cyrl cv  cv  - - - - | Chuvash
cym_Latn cy  cy  = = - - | Welsh
dan_Latn da  da  = = - - | Danish
deu_Latn de  de  = = - - | German
diq_Latn -   diq - - - - | Dimli (Zazaki)
dsb_Latn -   dsb - - - - | Lower Sorbian
dty_Deva -   dty - - - - | Dotyali
div_Thaa dv  dv  - - - - | Dhivehi
ell_Grek el  el  = = - - | Greek
eml_Latn -   eml - - - - | Emilian-Romagnol
eng_Latn en  en  = = - - | English
epo_Latn eo  eo  = = - - | Esperanto
spa_Latn es  es  = = - - | Spanish
est_Latn et  et  = ekk_Latn - ekk | Estonian
eus_Latn eu  eu  = = - - | Basque
pes_Arab fa  fa  = fas_Arab fas fas | Persian
fin_Latn fi  fi  = = - - | Finnish
fra_Latn fr  fr  = = - - | French
frr_Latn -   frr - - - - | Northern Frisian
fry_Latn fy  fy  - - - - | Western Frisian
gle_Latn ga  ga  = = - - | Irish
gla_Latn gd  gd  = = - - | Scottish Gaelic
glg_Latn gl  gl  = = - - | Galician
grn_Latn gn  gn  = gug_Latn - gug | Guarani
gom_Deva -   gom - - - - | Goan Konkani
guj_Gujr gu  gu  = = - - | Gujarati
glv_Latn gv  gv  - - - - | Manx
heb_Hebr he  he  = = - - | Hebrew
hin_Deva hi  hi  = = - - | Hindi
hif_Latn -   hif - - - - | Fiji Hindi
hrv_Latn hr  hr  = = - - | Croatian
hsb_Latn -   hsb - - - - | Upper Sorbian
hat_Latn ht  ht  = = - - | Haitian Creole
hun_Latn hu  hu  = = - - | Hungarian
hye_Armn hy  hy  = = - - | Armenian
ina_Latn ia  ia  - - - - | Interlingua
ind_Latn id  id  = = - - | Indonesian
ile_Latn ie  ie  - - - - | Interlingue
ilo_Latn -   ilo = = - - | Ilocano
ido_Latn io  io  - - - - | Ido
isl_Latn is  is  = = - - | Icelandic
ita_Latn it  it  = = - - | Italian
jpn_Jpan ja  ja  = = - - | Japanese
jbo_Latn -   jbo - - - - | Lojban
jav_Latn jv  jv  = = - - | Javanese
kat_Geor ka  ka  = = - - | Georgian
kaz_Cyrl kk  kk  = = - - | Kazakh
khm_Khmr km  km  = = - - | Khmer
kan_Knda kn  kn  = = - - | Kannada
kor_Hang ko  ko  = = - - | Korean
krc_Cyrl -   krc - - - - | Karachay-Balkar
kmr_Latn ku  ku  = = - kur | Northern Kurdish
kpv_Cyrl kv  kv  - - - kom | Komi
cor_Latn kw  kw  - - - - | Cornish
kir_Cyrl ky  ky  = = - - | Kyrgyz
lat_Latn la  la  - - - - | Latin
ltz_Latn lb  lb  = = - - | Luxembourgish
lez_Cyrl -   lez - - - - | Lezghian
lim_Latn li  li  = = - - | Limburgish
lmo_Latn -   lmo = = - - | Lombard
lao_Laoo lo  lo  = = - - | Lao
lrc_Arab -   lrc - - - - | Northern Luri
lit_Latn lt  lt  = = - - | Lithuanian
lvs_Latn lv  lv  = = - lav | Latvian
mai_Deva -   mai = = - - | Maithili
plt_Latn mg  mg  = = - mlg | Malagasy
mhr_Cyrl -   mhr - - - - | Eastern Mari
min_Latn -   min = = - - | Minangkabau
mkd_Cyrl mk  mk  = = - - | Macedonian
mal_Mlym ml  ml  = = - - | Malayalam
khk_Cyrl mn  mn  = = - mon | Mongolian
mar_Deva mr  mr  = = - - | Marathi
mrj_Cyrl -   mrj - - - - | Western Mari
zsm_Latn ms  ms  = = - msa | Malay
mlt_Latn mt  mt  = = - - | Maltese
mwl_Latn -   mwl - - - - | Mirandese
mya_Mymr my  my  = = - - | Burmese
myv_Cyrl -   myv - - - - | Erzya
mzn_Arab -   mzn - - - - | Mazanderani
nah_Latn -   nah - - - - | Nahuatl languages
nap_Latn -   nap - - - - | Neapolitan
nds_Latn -   nds - - - - | Low German
npi_Deva ne  ne  = = - nep | Nepali
new_Deva -   new - - - - | Newari
nld_Latn nl  nl  = = - - | Dutch
nno_Latn nn  nn  = = - - | Norwegian Nynorsk
nob_Latn nb  no  = = - no,nor | Norwegian Bokmål
oci_Latn oc  oc  = = - - | Occitan
ory_Orya or  or  = = - ori | Odia
oss_Cyrl os  os  - - - - | Ossetian
pan_Guru pa  pa  = = - - | Eastern Punjabi
pam_Latn -   pam - - - - | Pampanga
pfl_Latn -   pfl - - - - | Palatine German
pol_Latn pl  pl  = = - - | Polish
pms_Latn -   pms - - - - | Piedmontese
pnb_Arab -   pnb - - - - | Western Punjabi
pbt_Arab ps  ps  = = - pus | Pashto
por_Latn pt  pt  = = - - | Portuguese
quy_Latn qu  qu  = = - que | Quechua
roh_Latn rm  rm  - - - - | Romansh
ron_Latn ro  ro  = = - - | Romanian
rus_Cyrl ru  ru  = = - - | Russian
rue_Cyrl -   rue - - - - | Rusyn
san_Deva sa  sa  = = - - | Sanskrit
sah_Cyrl -   sah - - - - | Yakut
srd_Latn sc  sc  = = - - | Sardinian
scn_Latn -   scn = = - - | Sicilian
sco_Latn -   sco - - - - | Scots
snd_Arab sd  sd  = = - - | Sindhi
hbs_Latn sh  sh  - - - - | Serbo-Croatian
sin_Sinh si  si  = = - - | Sinhala
slk_Latn sk  sk  = = - - | Slovak
slv_Latn sl  sl  = = - - | Slovenian
som_Latn so  so  = = - - | Somali
als_Latn sq  sq  = = - sqi | Albanian
srp_Cyrl sr  sr  = = - - | Serbian
sun_Latn su  su  = = - - | Sundanese
swe_Latn sv  sv  = = - - | Swedish
swh_Latn sw  sw  = = - swa | Swahili
tam_Taml ta  ta  = = - - | Tamil
tel_Telu te  te  = = - - | Telugu
tgk_Cyrl tg  tg  = = - - | Tajik
tha_Thai th  th  = = - - | Thai
tuk_Latn tk  tk  = = - - | Turkmen
tgl_Latn tl  tl  = = - - | Tagalog
tur_Latn tr  tr  = = - - | Turkish
tat_Cyrl tt  tt  = = - - | Tatar
tyv_Cyrl -   tyv - - - - | Tuvinian
uig_Arab ug  ug  = = - - | Uyghur
ukr_Cyrl uk  uk  = = - - | Ukrainian
urd_Arab ur  ur  = = - - | Urdu
uzn_Latn uz  uz  = = - uzb | Uzbek
vec_Latn -   vec = = - - | Venetian
vep_Latn -   vep - - - - | Veps
vie_Latn vi  vi  = = - - | Vietnamese
vls_Latn -   vls - - - - | West Flemish
vol_Latn vo  vo  - - - - | Volapük
wln_Latn wa  wa  - - - - | Walloon
war_Latn -   war = = - - | Waray
wuu_Hans -   wuu - wuu_Hani - - | Wu Chinese
xal_Cyrl -   xal - - - - | Kalmyk
xmf_Geor -   xmf - - - - | Mingrelian
ydd_Hebr yi  yi  = = - yid | Yiddish
yor_Latn yo  yo  = = - - | Yoruba
yue_Hant -   yue = yue_Hani - - | Cantonese
zho_Hans zh  zh  = cmn_Hani zho - | Chinese (Simplified)
zho_Hant zh  zh  = cmn_Hani zho - | Chinese (Traditional)
cmn_Hani zh  -   - = zho - | Mandarin Chinese
ace_Latn -   -   = = - - | Acehnese
ace_Arab -   -   = = - - | Acehnese (Arabic script)
acm_Arab -   -   = = ara - | Mesopotamian Arabic
acq_Arab -   -   = arb_Arab ara - | Ta'izzi-Adeni Arabic
aeb_Arab -   -   = = ara - | Tunisian Arabic
ajp_Arab -   -   = = ara - | South Levantine Arabic
apc_Arab -   -   = = ara - | North Levantine Arabic
ars_Arab -   -   = = ara - | Najdi Arabic
ary_Arab -   -   = = ara - | Moroccan Arabic
awa_Deva -   -   = = - - | Awadhi
ayr_Latn ay  -   = = - aym | Central Aymara
bam_Latn bm  -   = = - - | Bambara
ban_Latn -   -   = = - - | Balinese
bem_Latn -   -   = = - - | Bemba
bho_Deva -   -   = = - - | Bhojpuri
bjn_Latn -   -   = = - - | Banjar
bjn_Arab -   -   = = - - | Banjar (Arabic script)
bug_Latn -   -   = = - - | Buginese
cjk_Latn -   -   = = - - | Chokwe
crh_Latn -   -   = = - - | Crimean Tatar
dik_Latn -   -   = = - - | Southwestern Dinka
dyu_Latn -   -   = = - - | Dyula
dzo_Tibt dz  -   = = - - | Dzongkha
ewe_Latn ee  -   = = - - | Ewe
fao_Latn fo  -   = = - - | Faroese
fij_Latn fj  -   = = - - | Fijian
fon_Latn -   -   = = - - | Fon
fur_Latn -   -   = = - - | Friulian
fuv_Latn ff  -   = = - ful | Nigerian Fulfulde
gaz_Latn om  -   = = - orm | West Central Oromo
hau_Latn ha  -   = = - - | Hausa
hne_Deva -   -   = = - - | Chhattisgarhi
ibo_Latn ig  -   = = - - | Igbo
kab_Latn -   -   = = - - | Kabyle
kac_Latn -   -   = = - - | Jingpho
kam_Latn -   -   = = - - | Kamba
kas_Arab ks  -   = = - - | Kashmiri
kas_Deva ks  -   = = - - | Kashmiri (Devanagari)
kbp_Latn -   -   = = - - | Kabiyè
kea_Latn -   -   = = - - | Kabuverdianu
kik_Latn ki  -   = = - - | Kikuyu
kin_Latn rw  -   = = - - | Kinyarwanda
kmb_Latn -   -   = = - - | Kimbundu
knc_Latn kr  -   = = - kau | Central Kanuri
knc_Arab kr  -   = = - kau | Central Kanuri (Arabic script)
kon_Latn kg  -   = ktu_Latn - - | Kongo
lij_Latn -   -   = = - - | Ligurian
lin_Latn ln  -   = = - - | Lingala
ltg_Latn -   -   = = - - | Latgalian
lua_Latn -   -   = = - - | Luba-Kasai
lug_Latn lg  -   = = - - | Ganda
luo_Latn -   -   = = - - | Luo
lus_Latn -   -   = = - - | Mizo
mag_Deva -   -   = = - - | Magahi
mni_Beng -   -   = = - - | Meitei
mos_Latn -   -   = = - - | Mossi
mri_Latn mi  -   = = - - | Maori
nso_Latn -   -   = = - - | Northern Sotho
nus_Latn -   -   = = - - | Nuer
nya_Latn ny  -   = = - - | Nyanja
pag_Latn -   -   = = - - | Pangasinan
pap_Latn -   -   = = - - | Papiamento
prs_Arab -   -   = fas_Arab fas - | Dari
run_Latn rn  -   = = - - | Rundi
sag_Latn sg  -   = = - - | Sango
sat_Olck -   -   = = - - | Santali
shn_Mymr -   -   = = - - | Shan
smo_Latn sm  -   = = - - | Samoan
sna_Latn sn  -   = = - - | Shona
sot_Latn st  -   = = - - | Southern Sotho
ssw_Latn ss  -   = = - - | Swati
szl_Latn -   -   = = - - | Silesian
taq_Latn -   -   = = - - | Tamasheq
taq_Tfng -   -   = = - - | Tamasheq (Tifinagh)
tir_Ethi ti  -   = = - - | Tigrinya
tpi_Latn -   -   = = - - | Tok Pisin
tsn_Latn tn  -   = = - - | Tswana
tso_Latn ts  -   = = - - | Tsonga
tum_Latn -   -   = = - - | Tumbuka
twi_Latn tw  -   = = - - | Twi
tzm_Tfng -   -   = = - - | Central Atlas Tamazight
umb_Latn -   -   = = - - | Umbundu
wol_Latn wo  -   = = - - | Wolof
xho_Latn xh  -   = = - - | Xhosa
zul_Latn zu  -   = = - - | Zulu
`;
