// Texts of the demo page in English and French, and the API's error codes mapped to
// sentences a user can act on. Branch on `error.code`, never on the server's message.

export const LANGUAGES = ['en', 'fr'];

const duration = {
  en: (s) => (s < 90 ? `${s} s` : `${Math.ceil(s / 60)} min`),
  fr: (s) => (s < 90 ? `${s} s` : `${Math.ceil(s / 60)} min`),
};

export const MESSAGES = {
  en: {
    'page.title': 'Sign in — otplogin demo',
    'title': 'Sign in',
    'intro': 'A demo of the three functions called straight from a browser: send_otp, verify_otp and login.',
    'language': 'Language',
    'local': 'Local mode: no text message is sent; codes land in the development outbox.',
    'config.failed': 'The page could not load its configuration (config.json).',
    'otp.title': 'Sign in with your phone',
    'otp.phone': 'Mobile number',
    'otp.phone.help': 'International format, for example +243 812 345 678.',
    'otp.channel': 'Send the code by',
    'otp.sms': 'SMS',
    'otp.whatsapp': 'WhatsApp',
    'otp.send': 'Send code',
    'otp.sent': ({ phone, expires, resend }) =>
      `A code was sent to ${phone}. It is valid for ${duration.en(expires)}; you can ask for a new one in ${duration.en(resend)}.`,
    'otp.challenge': 'Many codes are being asked for numbers like yours. Your browser runs a short check before the code is sent; no action needed.',
    'otp.challenge.failed': 'The check could not be completed. Try again.',
    'otp.code': 'Code received',
    'otp.code.help': 'The digits of the message, without spaces.',
    'otp.verify': 'Verify',
    'otp.other': 'Use another number',
    'otp.done': 'Your phone number is verified',
    'outbox.read': 'Read the code from the dev outbox',
    'outbox.found': ({ time }) => `Code read from the dev outbox (message sent at ${time}).`,
    'outbox.none': 'The dev outbox has no message for this number yet.',
    'outbox.failed': 'The dev outbox could not be read.',
    'login.title': 'Sign in with email and password',
    'login.identifier': 'Email or user code',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.done': ({ email }) => `Signed in as ${email}`,
    'login.profile': 'Your profile (decrypted by the login function)',
    'login.unavailable': ({ fields }) => `Could not be decrypted, shown empty: ${fields}.`,
    'mfa.title': 'Second step: a code was sent to your phone',
    'mfa.sent': ({ hint, expires }) => `Enter the code sent by SMS to ${hint}. It is valid for ${duration.en(expires)}.`,
    'mfa.code': 'Code sent to your phone',
    'mfa.done': 'Signed in with password and code',
    'session.title': 'You are signed in',
    'session.restored': ({ days }) => `Session restored after reloading the page, with a new access token. It lasts ${days} more days unless you sign out.`,
    'session.signout': 'Sign out',
    'session.signout.all': 'Sign out everywhere',
    'session.ended': 'Your session has ended. Sign in again.',
    'session.signedout': 'You are signed out.',
    'restart': 'Start over',
    'token.title': 'Access token claims',
    'token.claim': 'Claim',
    'token.value': 'Value',
    'token.verified': ({ kid }) => `Signature verified with key ${kid} from the login function's JWKS.`,
    'token.unverified': ({ reason }) => `Signature not checked: ${reason}.`,
    'busy': 'Please wait…',
    'profile.id': 'User id',
    'profile.email': 'Email',
    'profile.code': 'User code',
    'profile.role': 'Role',
    'profile.phone': 'Phone',
    'profile.address': 'Address',
    'profile.whatsapp': 'WhatsApp',
    'profile.none': 'none',
    'required.phone': 'Enter your mobile number.',
    'required.code': 'Enter the code you received.',
    'required.identifier': 'Enter your email or user code.',
    'required.password': 'Enter your password.',
    'detail': 'Technical detail',
    errors: {
      network: ({ origin }) =>
        `The service could not be reached. Check your connection. If it persists, this page's address (${origin}) may not be allowed to call the service (CORS): ask the administrator to add it.`,
      invalid_request: ({ field }) => (field ? `The field "${field}" is not valid.` : 'The request is not valid.'),
      invalid_phone: () => 'This is not a valid mobile number. Use the international format, for example +243 812 345 678.',
      country_not_allowed: ({ country }) =>
        `Codes cannot be sent to numbers of this country${country ? ` (${country})` : ''}.`,
      rate_limited: ({ retry_after }) => `Too many requests. Try again in ${duration.en(retry_after || 60)}.`,
      sms_delivery_failed: () => 'The code could not be delivered. Try again.',
      challenge_required: () => 'A short check is needed before a code can be sent. Try again.',
      unavailable: () => 'The service is temporarily unavailable. Try again in a moment.',
      invalid_code: ({ attempts_remaining: n }) =>
        n === 0
          ? 'This code is not correct, and no attempts are left: ask for a new code.'
          : `This code is not correct. ${n} ${n === 1 ? 'attempt' : 'attempts'} left.`,
      code_expired: () => 'This code has expired or was already used. Ask for a new code.',
      too_many_attempts: ({ retry_after }) =>
        `Too many wrong codes. Ask for a new code in ${duration.en(retry_after || 60)}.`,
      invalid_credentials: () => 'The email, user code or password is not correct.',
      account_locked: ({ retry_after }) =>
        `Too many failed sign-ins for this account. Try again in ${duration.en(retry_after || 60)}.`,
      payload_too_large: () => 'What you entered is too long.',
      unexpected: ({ status, code }) => `Unexpected answer from the service (${code || `HTTP ${status}`}). Try again.`,
    },
  },
  fr: {
    'page.title': 'Connexion — démo otplogin',
    'title': 'Connexion',
    'intro': 'Une démo des trois fonctions appelées directement depuis un navigateur : send_otp, verify_otp et login.',
    'language': 'Langue',
    'local': "Mode local : aucun SMS n'est envoyé ; les codes arrivent dans la boîte d'envoi de développement.",
    'config.failed': "La page n'a pas pu charger sa configuration (config.json).",
    'otp.title': 'Connexion avec votre téléphone',
    'otp.phone': 'Numéro de mobile',
    'otp.phone.help': 'Format international, par exemple +243 812 345 678.',
    'otp.channel': 'Recevoir le code par',
    'otp.sms': 'SMS',
    'otp.whatsapp': 'WhatsApp',
    'otp.send': 'Envoyer le code',
    'otp.sent': ({ phone, expires, resend }) =>
      `Un code a été envoyé au ${phone}. Il est valable ${duration.fr(expires)} ; vous pourrez en demander un nouveau dans ${duration.fr(resend)}.`,
    'otp.challenge': "Beaucoup de codes sont demandés pour des numéros comme le vôtre. Votre navigateur fait une courte vérification avant l'envoi du code ; rien à faire.",
    'otp.challenge.failed': "La vérification n'a pas abouti. Réessayez.",
    'otp.code': 'Code reçu',
    'otp.code.help': 'Les chiffres du message, sans espaces.',
    'otp.verify': 'Vérifier',
    'otp.other': 'Utiliser un autre numéro',
    'otp.done': 'Votre numéro de téléphone est vérifié',
    'outbox.read': "Lire le code dans la boîte d'envoi de dev",
    'outbox.found': ({ time }) => `Code lu dans la boîte d'envoi de dev (message envoyé à ${time}).`,
    'outbox.none': "La boîte d'envoi de dev n'a encore aucun message pour ce numéro.",
    'outbox.failed': "La boîte d'envoi de dev n'a pas pu être lue.",
    'login.title': 'Connexion avec e-mail et mot de passe',
    'login.identifier': 'E-mail ou code utilisateur',
    'login.password': 'Mot de passe',
    'login.submit': 'Se connecter',
    'login.done': ({ email }) => `Connecté en tant que ${email}`,
    'login.profile': 'Votre profil (déchiffré par la fonction login)',
    'login.unavailable': ({ fields }) => `Non déchiffrables, affichés vides : ${fields}.`,
    'mfa.title': 'Deuxième étape : un code a été envoyé sur votre téléphone',
    'mfa.sent': ({ hint, expires }) => `Saisissez le code envoyé par SMS au ${hint}. Il est valable ${duration.fr(expires)}.`,
    'mfa.code': 'Code envoyé sur votre téléphone',
    'mfa.done': 'Connecté avec mot de passe et code',
    'session.title': 'Vous êtes connecté',
    'session.restored': ({ days }) => `Session rétablie après le rechargement de la page, avec un nouveau jeton d'accès. Elle dure encore ${days} jours sauf si vous vous déconnectez.`,
    'session.signout': 'Se déconnecter',
    'session.signout.all': 'Se déconnecter partout',
    'session.ended': 'Votre session a pris fin. Connectez-vous à nouveau.',
    'session.signedout': 'Vous êtes déconnecté.',
    'restart': 'Recommencer',
    'token.title': "Contenu du jeton d'accès",
    'token.claim': 'Champ',
    'token.value': 'Valeur',
    'token.verified': ({ kid }) => `Signature vérifiée avec la clé ${kid} du JWKS de la fonction login.`,
    'token.unverified': ({ reason }) => `Signature non vérifiée : ${reason}.`,
    'busy': 'Veuillez patienter…',
    'profile.id': 'Identifiant',
    'profile.email': 'E-mail',
    'profile.code': 'Code utilisateur',
    'profile.role': 'Rôle',
    'profile.phone': 'Téléphone',
    'profile.address': 'Adresse',
    'profile.whatsapp': 'WhatsApp',
    'profile.none': 'aucun',
    'required.phone': 'Saisissez votre numéro de mobile.',
    'required.code': 'Saisissez le code reçu.',
    'required.identifier': 'Saisissez votre e-mail ou votre code utilisateur.',
    'required.password': 'Saisissez votre mot de passe.',
    'detail': 'Détail technique',
    errors: {
      network: ({ origin }) =>
        `Le service est injoignable. Vérifiez votre connexion. Si cela persiste, l'adresse de cette page (${origin}) n'est peut-être pas autorisée à appeler le service (CORS) : demandez à l'administrateur de l'ajouter.`,
      invalid_request: ({ field }) => (field ? `Le champ « ${field} » n'est pas valide.` : "La demande n'est pas valide."),
      invalid_phone: () =>
        "Ce numéro de mobile n'est pas valide. Utilisez le format international, par exemple +243 812 345 678.",
      country_not_allowed: ({ country }) =>
        `Les codes ne peuvent pas être envoyés vers les numéros de ce pays${country ? ` (${country})` : ''}.`,
      rate_limited: ({ retry_after }) => `Trop de demandes. Réessayez dans ${duration.fr(retry_after || 60)}.`,
      sms_delivery_failed: () => "Le code n'a pas pu être envoyé. Réessayez.",
      challenge_required: () => "Une courte vérification est nécessaire avant l'envoi d'un code. Réessayez.",
      unavailable: () => 'Le service est momentanément indisponible. Réessayez dans un instant.',
      invalid_code: ({ attempts_remaining: n }) =>
        n === 0
          ? "Ce code est incorrect et il ne reste plus d'essai : demandez un nouveau code."
          : `Ce code est incorrect. Il vous reste ${n} ${n === 1 ? 'essai' : 'essais'}.`,
      code_expired: () => 'Ce code a expiré ou a déjà été utilisé. Demandez un nouveau code.',
      too_many_attempts: ({ retry_after }) =>
        `Trop de codes erronés. Demandez un nouveau code dans ${duration.fr(retry_after || 60)}.`,
      invalid_credentials: () => "L'e-mail, le code utilisateur ou le mot de passe est incorrect.",
      account_locked: ({ retry_after }) =>
        `Trop de tentatives de connexion échouées pour ce compte. Réessayez dans ${duration.fr(retry_after || 60)}.`,
      payload_too_large: () => 'Ce que vous avez saisi est trop long.',
      unexpected: ({ status, code }) => `Réponse inattendue du service (${code || `HTTP ${status}`}). Réessayez.`,
    },
  },
};

/** The text of `key` in `lang` (a function of `params`, or a plain string). */
export function text(lang, key, params = {}) {
  const value = MESSAGES[lang][key] ?? MESSAGES.en[key] ?? key;
  return typeof value === 'function' ? value(params) : value;
}

/** A sentence for a failed call: `{kind: 'network'|'api'|'unexpected', code, status, data}`. */
export function errorText(lang, failure, origin) {
  const errors = MESSAGES[lang].errors;
  if (failure.kind === 'network') return errors.network({ origin });
  if (failure.kind === 'api' && errors[failure.code]) {
    return errors[failure.code]({ ...failure.data, retry_after: failure.retryAfter });
  }
  return errors.unexpected({ status: failure.status, code: failure.code });
}
