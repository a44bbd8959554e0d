"""Generate ``web.jsonl``: a small, deterministic, noisy web-like sample source.

Standard library only, fixed seed: running it again reproduces ``web.jsonl`` and
``expected_outcomes.json`` byte for byte.  It reads the committed
``../udhr/udhr.jsonl`` (English, French, Spanish, German and Italian UDHR
articles) and mixes those sentences with hand-written prose; see README.md for
the classes of documents, their id prefixes and their expected outcomes.

    python sources/samples/web_noisy/make_web_noisy.py
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
UDHR = HERE.parent / "udhr" / "udhr.jsonl"
OUT = HERE / "web.jsonl"
EXPECTED = HERE / "expected_outcomes.json"
SEED = 20240611

# Thresholds the generator enforces on the documents that must be KEPT, so that
# any reasonable ROOTS-style filter configuration keeps them.
KEEP_MIN_WORDS = 40
KEEP_MAX_JACCARD = 0.2  # word 5-gram Jaccard between any two distinct kept docs
KEEP_MAX_WORD_REP = (
    0.08  # share of word 5-gram occurrences whose 5-gram occurs more than once
)
KEEP_MAX_CHAR_REP = (
    0.09  # share of char 10-gram occurrences taken by the top-k repeated 10-grams
)
NEAR_DUP_MIN_JACCARD = 0.8  # word 5-gram Jaccard of a near duplicate to its original

# --------------------------------------------------------------------------------------------
# Hand-written prose.  Each topic is a list of sentences that read well in order; a
# document takes an ordered subset of one topic.
# --------------------------------------------------------------------------------------------
EN_TOPICS: dict[str, list[str]] = {
    "community-garden": [
        "The community garden on Elm Street opened for the season last Saturday, and more than forty neighbours turned up with spades and seedlings.",
        "Each family rents a small raised bed for a modest fee, and the money pays for water, compost and the occasional broken wheelbarrow.",
        "This year the committee decided to set aside two beds for the primary school, so that children can grow beans and sunflowers during the summer term.",
        "Old hands like Margaret, who has gardened here for twenty years, are happy to share advice about slugs, late frosts and when to plant potatoes.",
        "The biggest change is the new rainwater tank, which should help us get through the dry weeks of July without relying on the mains supply.",
        "Volunteers meet every Wednesday evening to turn the compost heaps and repair the fences that the foxes keep digging under.",
        "If you have never grown anything before, start with lettuce and radishes, because they come up quickly and forgive most mistakes.",
        "At the end of the season we hold a harvest lunch where everyone brings something they have grown, cooked or preserved.",
        "Last year the tomatoes were disappointing, but the pumpkins were so large that we had to borrow a trolley to move them.",
        "There is still a waiting list for plots, although the committee hopes to open a second site near the railway station next spring.",
    ],
    "home-baking": [
        "Baking bread at home is less complicated than many people think, and it needs only flour, water, salt and a little patience.",
        "I started making a simple loaf every Sunday morning during a long winter, mostly because the nearest bakery closed at noon.",
        "The dough should feel soft and slightly sticky after kneading; if it tears when you stretch it, give it a few more minutes of work.",
        "Most of the flavour develops during a slow rise, so I usually leave the bowl in a cool kitchen overnight, covered with a damp towel.",
        "A hot oven matters more than any special equipment, and a heavy pot with a lid gives the crust a surprising amount of colour.",
        "My first attempts were dense and flat, but each failure taught me something about timing, temperature and how much water to add.",
        "Wholemeal flour absorbs more water than white flour, so a recipe that works for one will not necessarily work for the other.",
        "When the loaf comes out of the oven, resist the temptation to cut it at once, because the inside keeps cooking as it cools.",
        "Leftover bread never goes to waste in our house; it becomes toast, breadcrumbs or a pudding for the following weekend.",
        "Friends now ask me for the recipe, and I always tell them that the secret is simply to bake often and keep notes.",
    ],
    "cycling-to-work": [
        "Since the council painted a protected cycle lane along the river road, the number of people riding to work has almost doubled.",
        "I switched from the bus to a second-hand bike two years ago, and the journey now takes twenty minutes instead of forty.",
        "The hardest part was not the distance but learning which junctions to avoid and where drivers tend to turn without looking.",
        "Good lights and a bright jacket are essential in winter, when it is already dark by the time most of us leave the office.",
        "Several employers in the business park have installed showers and secure racks, which makes a real difference on rainy days.",
        "Critics say the new lanes have slowed down traffic, but the figures published this month show that journey times have barely changed.",
        "A basic repair kit, a pump and the confidence to fix a puncture at the roadside will save you a lot of frustration.",
        "The city is now planning to extend the network to the northern suburbs, where many families live but few people cycle.",
        "Riding through the park in the early morning, when the paths are empty and the air is cool, is the best part of my day.",
        "Of course cycling is not for everyone, and the plan also promises more frequent buses for those who cannot ride.",
    ],
    "library-reopens": [
        "After eighteen months of building work, the town library reopened on Monday with a brighter reading room and a new children's corner.",
        "The old card catalogue has finally disappeared, but the librarians kept one wooden drawer as a reminder of how things used to be.",
        "Visitors can now borrow laptops for the afternoon, print documents and get help filling in online forms at the information desk.",
        "The local history collection, which includes maps and photographs going back to the eighteen hundreds, has moved to a quieter room upstairs.",
        "Opening hours have been extended on Thursdays, so that people who work during the day can still come in the evening.",
        "A reading group for teenagers meets on the first Saturday of every month, and the first book they chose was a science fiction novel.",
        "The renovation was paid for partly by the council and partly by a campaign in which residents sponsored individual shelves.",
        "Some regular readers miss the creaky floorboards and the smell of old paper, but most agree that the building feels more welcoming.",
        "Volunteers are still needed to help older residents learn how to use e-books and the online catalogue.",
        "The head librarian said the aim was to make the library a place where anyone can spend an hour without having to buy anything.",
    ],
    "hill-walk": [
        "We set off from the village just after sunrise, hoping to reach the ridge before the clouds rolled in from the west.",
        "The first part of the trail follows an old drovers' road between stone walls, and it climbs gently through fields of sheep.",
        "After about two hours the path becomes steeper and rockier, and we were glad we had packed proper boots and walking poles.",
        "At the top the wind was strong enough to make conversation difficult, so we ate our sandwiches in the shelter of a large boulder.",
        "From the summit you can see three lakes on a clear day, although we only managed to spot two before the mist arrived.",
        "The descent took longer than expected, because the grass was wet and nobody wanted to twist an ankle on the loose stones.",
        "It is worth checking the weather forecast the evening before, since conditions in the hills can change within an hour.",
        "We passed a small group of students doing a map-reading exercise, who cheerfully admitted they had been lost twice already.",
        "By the time we returned to the village the café was about to close, but the owner kindly made us a pot of tea anyway.",
        "Next month we plan to try the longer circular route, which takes most of a day and crosses two streams without bridges.",
    ],
    "working-from-home": [
        "Working from home sounds relaxing until you realise that the kitchen table is also where everyone else wants to have breakfast.",
        "The most useful thing I did was to set fixed hours and tell my family when I should not be interrupted.",
        "A proper chair and a screen at eye level made more difference to my back than any amount of stretching.",
        "Many people find that they miss the small conversations in the corridor more than they expected.",
        "Our team now holds a short call every morning, which keeps everyone informed without filling the whole day with meetings.",
        "It helps to go for a walk at lunchtime, even a short one, because otherwise you can spend the whole day without leaving the house.",
        "Some colleagues prefer to work from a café or a shared office a couple of days a week, simply to see other faces.",
        "Managers had to learn to judge people by the work they deliver rather than by the hours they appear to be at their desks.",
        "The main disadvantage for younger staff is that they have fewer chances to learn by watching more experienced colleagues.",
        "In the end most of us have settled on a mixture, spending two or three days in the office and the rest at home.",
    ],
    "birdwatching": [
        "Early spring is a wonderful time to start watching birds, because the trees are still bare and the males are singing loudly.",
        "You do not need expensive equipment to begin; a pair of ordinary binoculars and a small field guide are enough.",
        "This morning a pair of blackbirds was busy building a nest in the hedge at the bottom of our garden.",
        "The marsh near the estuary attracts thousands of geese in winter, and their calls can be heard from the car park.",
        "Keeping a simple notebook of what you see, and when, soon turns into a surprisingly interesting record of the seasons.",
        "Feeders should be cleaned regularly, since dirty trays can spread disease among the birds that visit them.",
        "Last weekend the local group counted twenty-three species in two hours, including a kingfisher that flashed past the bridge.",
        "Many people learn to recognise birds by their songs long before they can identify them by sight.",
        "Cats, windows and the loss of old hedges are among the biggest threats to garden birds in towns.",
        "If you are lucky, a quiet evening walk along the river may reward you with the sight of an owl hunting over the meadow.",
    ],
    "cafe-review": [
        "The new café on the corner of Station Road has only been open for a month, but it is already busy every morning.",
        "The owners roast their own beans in a small room at the back, and the smell reaches the street when the door is open.",
        "I ordered a flat white and a slice of carrot cake, and both were better than anything I have had in town for a while.",
        "Prices are slightly higher than at the chain around the corner, although the portions are generous and the staff are friendly.",
        "There are a few tables by the window, a long bench at the back and, on sunny days, three small tables on the pavement.",
        "The only real complaint is the noise, since the room has hard floors and the coffee machine is rather loud.",
        "They also sell bread from a bakery in the next village, which tends to sell out well before lunchtime.",
        "Parents seem to like the place because there is space for pushchairs and a box of books for small children.",
        "Wi-Fi is available, but the owners politely ask people not to occupy a table with a laptop for the whole afternoon.",
        "I will certainly go back, probably on a weekday morning when it is a little quieter.",
    ],
    "river-flood": [
        "Heavy rain over the weekend caused the river to rise by almost a metre, and several low-lying roads were closed on Sunday.",
        "Residents in the older part of town spent the night moving furniture upstairs, although most houses stayed dry in the end.",
        "The fire service pumped water out of two cellars and helped a farmer move his sheep to higher ground.",
        "Forecasters expect drier weather for the rest of the week, with cold nights and the possibility of frost on Thursday.",
        "The council has promised to review the drainage along the main road, which floods every time there is a heavy storm.",
        "Volunteers handed out sandbags from the school car park, and the local shop stayed open late to sell torches and batteries.",
        "Older residents say the river has flooded more often in the last ten years than at any time they can remember.",
        "Insurance companies have advised people to photograph any damage before they start cleaning or throwing things away.",
        "Schools reopened on Tuesday, although the playing fields will remain closed until the ground has had time to drain.",
        "A public meeting will be held next month to discuss plans for a flood barrier upstream of the bridge.",
    ],
    "learning-portuguese": [
        "I started learning Portuguese last autumn, mainly because I wanted to talk to my neighbours in their own language.",
        "The first few weeks were encouraging, since the grammar is close to Spanish, which I had studied at school.",
        "Pronunciation turned out to be much harder than I expected, especially the nasal vowels and the way words run together.",
        "Twenty minutes of practice every day works far better for me than a long session once a week.",
        "I listen to the radio while cooking, even when I understand only a few words, because it trains the ear.",
        "My neighbour corrects my mistakes kindly and has started lending me children's books, which are perfect for beginners.",
        "Writing a short diary in the new language forces you to look up the words you actually need in daily life.",
        "There are days when nothing seems to stick, and it is tempting to give up and switch back to English.",
        "What keeps me going is the moment when a conversation suddenly flows and you forget that you are translating.",
        "My goal for next year is to read a whole novel without reaching for the dictionary on every page.",
    ],
    "harbour-exhibition": [
        "The city museum has opened a new exhibition about the history of the harbour, which was once the busiest on the coast.",
        "Visitors begin in a reconstructed warehouse, surrounded by barrels, ropes and the voices of dock workers recorded in the nineteen fifties.",
        "One room is devoted to the families who emigrated from the port, with letters they sent home from across the ocean.",
        "The curators have borrowed several ship models from private collections, some of which have never been shown in public.",
        "Children can try on oilskin coats, tie sailors' knots and steer a small wooden boat through a simulated storm.",
        "The most moving object is a simple wooden chest that belonged to a young woman who left the town in eighteen ninety.",
        "Information panels are printed in three languages, and an audio guide is available for a small fee at the entrance.",
        "The exhibition also looks at the decline of the harbour after the war and the recent efforts to bring new life to the waterfront.",
        "Entry is free for residents on the first Sunday of every month, and guided tours run on Saturday afternoons.",
        "It runs until the end of October, so there is plenty of time to visit, although weekends are likely to be crowded.",
    ],
    "phone-battery": [
        "If your phone battery seems to drain faster than it used to, there are a few simple things you can check before buying a new one.",
        "The screen is usually the biggest consumer of power, so lowering the brightness can add hours to a single charge.",
        "Apps that constantly check your location in the background are another common cause of poor battery life.",
        "Most phones now include a settings page that shows which apps used the most energy over the last day.",
        "Batteries age with every charge cycle, and after two or three years it is normal for them to hold noticeably less charge.",
        "Leaving a phone in a hot car or on a sunny windowsill can damage the battery more quickly than heavy use.",
        "Many manufacturers recommend keeping the charge between about twenty and eighty per cent if you want the battery to last.",
        "Replacing the battery is often much cheaper than replacing the whole phone, and many repair shops can do it within an hour.",
        "Turning off features you rarely use, such as Bluetooth or automatic updates over mobile data, can also help.",
        "Finally, keep the software up to date, since updates sometimes fix bugs that cause the battery to drain overnight.",
    ],
}

FR_TOPICS: dict[str, list[str]] = {
    "marche-du-samedi": [
        "Le marché du samedi matin est le cœur de notre quartier, et il attire des habitants de toutes les communes voisines.",
        "Dès sept heures, les maraîchers installent leurs étals de légumes, de fruits de saison et de fleurs coupées.",
        "Madame Lefèvre vend ses fromages de chèvre au même endroit depuis plus de trente ans, et ses clients la connaissent tous par son prénom.",
        "Les prix sont parfois un peu plus élevés qu'au supermarché, mais la qualité et la fraîcheur des produits font la différence.",
        "En automne, on trouve des champignons, des châtaignes et des courges de toutes les formes et de toutes les couleurs.",
        "Beaucoup de familles viennent aussi pour le plaisir de flâner, de discuter avec les commerçants et de boire un café en terrasse.",
        "La mairie a récemment décidé d'interdire les sacs en plastique, et la plupart des clients apportent désormais leur propre panier.",
        "Un petit groupe de musiciens joue souvent près de la fontaine, ce qui donne au marché une ambiance de fête.",
        "Vers midi, les commerçants baissent leurs prix pour écouler les derniers produits avant de remballer.",
        "Pour beaucoup d'habitants, faire le marché n'est pas une corvée, c'est un rendez-vous qu'ils ne manqueraient pour rien au monde.",
    ],
    "randonnee": [
        "Nous sommes partis du col à l'aube, avec l'espoir d'atteindre le sommet avant que la chaleur ne devienne trop forte.",
        "Le sentier traverse d'abord une forêt de sapins, où l'air reste frais même au milieu de l'été.",
        "Après deux heures de marche, la pente devient plus raide et le chemin se transforme en un étroit passage entre les rochers.",
        "Au sommet, la vue sur les lacs et les villages de la vallée récompense largement les efforts de la montée.",
        "Nous avons pique-niqué à l'abri du vent, en partageant du pain, du fromage et quelques fruits secs.",
        "La descente a été plus longue que prévu, car l'orage menaçait et nous avons préféré prendre un chemin moins exposé.",
        "Il est indispensable d'emporter suffisamment d'eau, une veste imperméable et une carte, même pour une courte sortie.",
        "Nous avons croisé un berger qui surveillait son troupeau et qui nous a conseillé un refuge pour la prochaine fois.",
        "De retour au village, nous étions fatigués mais ravis, et nous avons déjà prévu une nouvelle sortie le mois prochain.",
        "La montagne demande de l'humilité, et il vaut toujours mieux faire demi-tour que de prendre des risques inutiles.",
    ],
    "rentree-scolaire": [
        "La rentrée des classes a eu lieu lundi dans une ambiance à la fois joyeuse et un peu inquiète.",
        "Dans l'école primaire du quartier, deux nouvelles enseignantes ont rejoint l'équipe cette année.",
        "Les parents se sont rassemblés devant le portail bien avant l'heure, certains avec un appareil photo à la main.",
        "Pour les plus petits, la séparation a parfois été difficile, mais la plupart ont vite retrouvé le sourire.",
        "La cantine propose désormais un repas végétarien par semaine, une décision qui a fait débat parmi les familles.",
        "Le directeur a rappelé que la cour de récréation avait été entièrement rénovée pendant l'été.",
        "Les listes de fournitures restent longues, et beaucoup de parents se plaignent du coût de la rentrée.",
        "Une association du quartier organise d'ailleurs une bourse aux livres et aux cartables d'occasion.",
        "Au collège, les élèves de sixième ont eu droit à une journée d'accueil pour découvrir les lieux et leurs professeurs.",
        "Chacun espère désormais une année calme, studieuse et riche en découvertes.",
    ],
    "ratatouille": [
        "La ratatouille est un plat simple de la cuisine provençale, qui se prépare avec les légumes de la fin de l'été.",
        "Il faut des tomates bien mûres, des courgettes, des aubergines, des poivrons, des oignons et un peu d'ail.",
        "Le secret consiste à faire revenir chaque légume séparément dans l'huile d'olive avant de les réunir dans la cocotte.",
        "Cette méthode demande un peu plus de temps, mais elle permet à chaque légume de garder sa saveur et sa texture.",
        "On ajoute ensuite du thym, du laurier et une pincée de sel, puis on laisse mijoter à feu doux pendant une heure.",
        "Beaucoup de cuisiniers affirment que la ratatouille est encore meilleure le lendemain, une fois réchauffée.",
        "Elle accompagne très bien une viande grillée, un poisson ou simplement une assiette de riz.",
        "Ma grand-mère la servait froide en été, avec un œuf dur et quelques tranches de pain de campagne.",
        "Il n'existe pas une seule recette, car chaque famille a ses habitudes et ses petits secrets.",
        "L'essentiel est de choisir de bons légumes et de ne pas être pressé.",
    ],
    "bibliotheque": [
        "La bibliothèque municipale a rouvert ses portes après plusieurs mois de travaux de rénovation.",
        "Les lecteurs découvrent une grande salle lumineuse, de nouveaux fauteuils et un espace réservé aux enfants.",
        "Le fonds de bandes dessinées, très demandé par les adolescents, a été considérablement enrichi.",
        "Il est désormais possible d'emprunter des liseuses et de réserver des documents depuis chez soi.",
        "Les horaires d'ouverture ont été élargis le mercredi et le samedi, pour répondre aux demandes des familles.",
        "Des ateliers d'écriture et des lectures de contes sont proposés gratuitement tout au long de l'année.",
        "Les bibliothécaires accompagnent aussi les personnes âgées qui souhaitent apprendre à utiliser un ordinateur.",
        "Une partie des travaux a été financée grâce aux dons des habitants et d'une association d'anciens élèves.",
        "Certains habitués regrettent l'ancienne salle de lecture, plus calme, mais la plupart saluent la transformation.",
        "Pour la maire, la bibliothèque doit rester un lieu ouvert à tous, où chacun peut venir sans rien acheter.",
    ],
    "velo-en-ville": [
        "Depuis l'ouverture de la nouvelle piste cyclable le long du canal, de plus en plus d'habitants se rendent au travail à vélo.",
        "J'ai abandonné la voiture il y a un an, et je mets désormais moins de temps pour traverser la ville.",
        "Le plus difficile a été d'apprendre à circuler dans les carrefours, où les automobilistes ne regardent pas toujours.",
        "En hiver, un bon éclairage et un gilet réfléchissant sont indispensables, car il fait nuit très tôt.",
        "Plusieurs entreprises ont installé des garages à vélos sécurisés et des douches pour leurs salariés.",
        "Les commerçants du centre craignaient une baisse de leur chiffre d'affaires, mais les premiers chiffres sont plutôt rassurants.",
        "Savoir réparer une crevaison au bord de la route évite bien des soucis et des retards.",
        "La municipalité prévoit d'étendre le réseau vers les quartiers nord, encore mal desservis.",
        "Rouler le long de l'eau au petit matin, quand la ville dort encore, reste pour moi un vrai plaisir.",
        "Bien sûr, le vélo ne convient pas à tout le monde, et les transports en commun doivent eux aussi progresser.",
    ],
    "festival": [
        "Le festival de musique de la vallée a accueilli cette année plus de dix mille spectateurs en trois jours.",
        "Les organisateurs ont misé sur un mélange de jeunes talents locaux et d'artistes déjà connus.",
        "Le concert d'ouverture, donné dans la cour du château, a été interrompu quelques minutes par une averse.",
        "Malgré la pluie, le public est resté jusqu'au bout, abrité sous des parapluies et des capes colorées.",
        "Des centaines de bénévoles ont assuré l'accueil, la buvette et le nettoyage du site chaque soir.",
        "Les habitants du village ont ouvert leurs jardins pour héberger des musiciens et des festivaliers.",
        "Le dimanche après-midi était consacré aux familles, avec des ateliers de percussions pour les enfants.",
        "Certains riverains se sont plaints du bruit tardif, et la mairie a promis d'en discuter avec l'association.",
        "Le bilan financier reste fragile, car le festival dépend largement des subventions et de la météo.",
        "Les organisateurs ont déjà annoncé les dates de la prochaine édition, prévue au début du mois de juillet.",
    ],
}

ES_TOPICS: dict[str, list[str]] = {
    "tortilla": [
        "La tortilla de patatas es uno de los platos más sencillos y, al mismo tiempo, más discutidos de la cocina española.",
        "Solo hacen falta huevos, patatas, aceite de oliva, sal y, según a quién se pregunte, un poco de cebolla.",
        "Las patatas deben cocinarse lentamente en abundante aceite, sin que lleguen a dorarse demasiado.",
        "Después se mezclan con los huevos batidos y se deja reposar la mezcla unos minutos antes de cuajarla.",
        "El momento más delicado es darle la vuelta con ayuda de un plato, algo que asusta a muchos principiantes.",
        "Hay quien la prefiere muy jugosa por dentro y quien la quiere bien hecha, y ambas opciones tienen defensores apasionados.",
        "En muchos bares se sirve en pequeñas porciones como tapa, acompañada de pan y una bebida fría.",
        "Mi abuela la preparaba todos los domingos, y nunca utilizaba una receta escrita ni medía los ingredientes.",
        "También se puede tomar fría al día siguiente, lo que la convierte en una comida ideal para llevar de excursión.",
        "Lo importante es usar buenos ingredientes y tener paciencia, porque con prisas el resultado nunca es el mismo.",
    ],
    "camino-de-santiago": [
        "El verano pasado recorrimos a pie los últimos cien kilómetros del Camino de Santiago, desde Sarria hasta la catedral.",
        "Cada mañana salíamos muy temprano para evitar el calor y llegar al siguiente albergue antes del mediodía.",
        "El paisaje gallego nos sorprendió por su verdor, con bosques de robles, aldeas de piedra y pequeños ríos.",
        "En el camino conocimos a peregrinos de muchos países, y algunos se convirtieron en compañeros de viaje durante varios días.",
        "Las ampollas fueron nuestro mayor problema, así que aprendimos a cuidar los pies con mucha atención.",
        "En los pueblos siempre encontrábamos un bar donde tomar un café con leche y un trozo de empanada.",
        "La llegada a la plaza del Obradoiro fue muy emocionante, aunque estábamos agotados después de la última etapa.",
        "Conviene reservar alojamiento con antelación en temporada alta, porque los albergues se llenan rápidamente.",
        "No hace falta ser un gran deportista, pero sí es recomendable entrenar un poco antes de salir.",
        "Volveríamos a hacerlo sin dudarlo, quizá por otra ruta y en una época del año más tranquila.",
    ],
    "huerto-urbano": [
        "El huerto urbano del barrio empezó hace tres años en un solar abandonado junto al polideportivo.",
        "Hoy cuenta con más de treinta parcelas cultivadas por vecinos de todas las edades.",
        "Cada familia se encarga de su propio espacio, pero las herramientas y el agua se comparten entre todos.",
        "Los más veteranos enseñan a los recién llegados cuándo sembrar, cómo regar y qué hacer con las plagas.",
        "Este año los tomates y los pimientos han dado una cosecha excelente gracias al buen tiempo de la primavera.",
        "Un colegio cercano utiliza dos parcelas para que los niños aprendan de dónde vienen los alimentos.",
        "Los sábados por la mañana se organizan talleres de compostaje y de cultivo sin productos químicos.",
        "El ayuntamiento ha prometido instalar un depósito de agua de lluvia para reducir el consumo.",
        "Además de verduras, el huerto ha servido para que muchos vecinos se conozcan y se ayuden.",
        "Todavía hay una lista de espera, así que los organizadores buscan otro terreno para ampliar el proyecto.",
    ],
    "futbol-juvenil": [
        "El equipo juvenil del pueblo consiguió el domingo un ascenso histórico tras ganar el último partido de la temporada.",
        "El campo municipal se llenó de familias, vecinos y antiguos jugadores que no quisieron perderse el encuentro.",
        "El primer tiempo fue muy igualado, y el rival estuvo a punto de adelantarse en dos ocasiones.",
        "Tras el descanso, un gol de cabeza en un saque de esquina desató la alegría en las gradas.",
        "El entrenador, que lleva más de diez años en el club, dedicó la victoria a los padres y a los voluntarios.",
        "Muchos de estos chicos empezaron a jugar juntos cuando tenían seis o siete años.",
        "El club sobrevive gracias a las cuotas de los socios, a una pequeña ayuda municipal y a la venta de lotería.",
        "La próxima temporada tendrán que viajar más lejos, lo que supondrá un esfuerzo económico importante.",
        "Por la noche, los jugadores celebraron el ascenso en la plaza mayor junto a buena parte del pueblo.",
        "El alcalde anunció que el campo tendrá por fin césped artificial antes del próximo invierno.",
    ],
    "club-de-lectura": [
        "La biblioteca del barrio ha puesto en marcha un club de lectura que se reúne el último jueves de cada mes.",
        "Las sesiones están abiertas a todo el mundo y no es necesario haber terminado el libro para participar.",
        "Este trimestre se leerán novelas de autores latinoamericanos, desde clásicos hasta obras recientes.",
        "La coordinadora, una profesora jubilada, prepara siempre algunas preguntas para animar la conversación.",
        "Muchos participantes reconocen que, sin el club, nunca habrían elegido algunos de esos libros.",
        "La biblioteca también ofrece préstamo de libros electrónicos y acceso gratuito a periódicos digitales.",
        "Los sábados por la mañana hay cuentacuentos para los más pequeños, que suelen llenar la sala infantil.",
        "El personal ayuda a las personas mayores a realizar trámites en internet y a usar el correo electrónico.",
        "A pesar de los recortes, la biblioteca sigue siendo uno de los espacios públicos más queridos del barrio.",
        "Quien quiera apuntarse al club solo tiene que dejar su nombre en el mostrador de información.",
    ],
    "estudiar-examenes": [
        "Preparar los exámenes finales puede resultar agotador si no se organiza bien el tiempo desde el principio.",
        "Lo más útil es hacer un calendario realista y repartir las materias a lo largo de varias semanas.",
        "Estudiar en sesiones cortas, con descansos frecuentes, ayuda a mantener la concentración durante más tiempo.",
        "Conviene dejar el teléfono en otra habitación, porque las notificaciones interrumpen constantemente.",
        "Resumir los temas con tus propias palabras es una de las mejores formas de comprobar si los has entendido.",
        "Explicar la materia a un compañero también obliga a ordenar las ideas y a detectar las dudas.",
        "Dormir lo suficiente es tan importante como estudiar, ya que el cansancio afecta a la memoria.",
        "Muchos estudiantes descubren que hacer ejercicio unos minutos al día les ayuda a reducir la ansiedad.",
        "La noche antes del examen es mejor repasar con calma que intentar aprender algo completamente nuevo.",
        "Y, sobre todo, hay que recordar que un mal resultado no define el valor de una persona.",
    ],
    "lluvias": [
        "Las lluvias de los últimos días han aliviado la sequía que sufría la comarca desde el comienzo del verano.",
        "Los embalses han recuperado parte de su capacidad, aunque todavía están lejos de sus niveles habituales.",
        "Los agricultores celebran el agua, pero temen que el granizo haya dañado algunas viñas.",
        "En la capital, varias calles se inundaron durante la tormenta del martes y hubo retrasos en el transporte público.",
        "Los servicios de emergencia atendieron más de cien avisos, la mayoría por caídas de ramas y pequeñas inundaciones.",
        "Los meteorólogos prevén un descenso de las temperaturas y cielos despejados para el fin de semana.",
        "Los expertos recuerdan que una semana de lluvia no basta para compensar varios años de sequía.",
        "El ayuntamiento ha pedido a los vecinos que no dejen objetos en los balcones cuando haya alertas de viento.",
        "Los colegios mantuvieron las clases con normalidad, aunque se suspendieron las actividades al aire libre.",
        "Muchos vecinos aprovecharon la tarde soleada del jueves para pasear por el parque recién regado.",
    ],
}

# Framing and closing sentences for documents built around UDHR extracts.
FRAMES = {
    "en": (
        [
            "Our evening class spent this week reading the Universal Declaration of Human Rights, and these passages started the longest discussion.",
            "I copied out a few lines from the Universal Declaration of Human Rights for my daughter's school project, and they are worth reading slowly.",
            "The following articles were read aloud at the opening of the town's Human Rights Day exhibition on the tenth of December.",
            "Many people have heard of the Universal Declaration, but few have actually read it from beginning to end.",
            "Here are the extracts that our reading group chose to discuss at the library last Thursday.",
            "The Declaration was adopted by the General Assembly of the United Nations in Paris in December 1948.",
            "When the students were asked which parts of the Declaration mattered most to them, their answers were surprisingly varied.",
            "It is easy to forget how radical some of these sentences sounded when they were first written.",
            "Our volunteers printed the following passages on posters for the community centre.",
            "A visitor left a note asking why we quote the Universal Declaration so often on this blog, so here is a short selection.",
            "The text is short enough to read over a cup of coffee, yet it has been translated into hundreds of languages.",
            "These lines were chosen by the debating club as the starting point for next month's competition.",
        ],
        [
            "We will continue the discussion at our next meeting, and newcomers are always welcome.",
            "The full text is available in the library, and copies can be borrowed at the front desk.",
            "Which of these articles do you think is most often ignored today?",
            "Thanks to everyone who came along and shared their thoughts.",
            "Next week we will look at the articles on work, rest and education.",
            "It is worth reading the whole document at least once in your life.",
        ],
    ),
    "fr": (
        [
            "Notre atelier d'éducation civique a consacré sa séance de la semaine à la Déclaration universelle des droits de l'homme.",
            "Voici quelques extraits de la Déclaration universelle que les élèves ont choisi de commenter.",
            "Ces articles ont été lus à voix haute lors de l'ouverture de l'exposition organisée à la médiathèque.",
            "Beaucoup de gens ont entendu parler de la Déclaration universelle, mais peu l'ont vraiment lue en entier.",
            "La Déclaration a été adoptée par l'Assemblée générale des Nations unies à Paris, en décembre 1948.",
            "Le club de débat du lycée a retenu les passages suivants pour son prochain concours.",
            "On oublie parfois à quel point certaines de ces phrases paraissaient audacieuses à l'époque.",
            "Les bénévoles de l'association ont imprimé ces extraits sur des affiches pour la maison de quartier.",
            "Le texte est court, et pourtant il a été traduit dans des centaines de langues.",
            "Un lecteur nous a demandé pourquoi nous citons si souvent la Déclaration universelle ; voici une petite sélection.",
        ],
        [
            "Nous poursuivrons la discussion lors de notre prochaine rencontre, ouverte à toutes et à tous.",
            "Le texte complet est disponible à l'accueil de la bibliothèque.",
            "Selon vous, lequel de ces articles est le moins respecté aujourd'hui ?",
            "Merci à toutes les personnes présentes pour la qualité des échanges.",
            "La semaine prochaine, nous étudierons les articles consacrés au travail et à l'éducation.",
        ],
    ),
    "es": (
        [
            "En la clase de educación cívica de esta semana hemos leído algunos artículos de la Declaración Universal de Derechos Humanos.",
            "Estos son los fragmentos que el grupo de lectura eligió para comentar en la biblioteca.",
            "Los siguientes artículos se leyeron en voz alta durante la inauguración de la exposición en el centro cultural.",
            "Mucha gente ha oído hablar de la Declaración Universal, pero pocos la han leído completa.",
            "La Declaración fue adoptada por la Asamblea General de las Naciones Unidas en París, en diciembre de 1948.",
            "El club de debate del instituto ha escogido estos pasajes como punto de partida para su próximo torneo.",
            "A veces olvidamos lo audaces que parecían algunas de estas frases cuando se escribieron.",
            "Los voluntarios de la asociación imprimieron estos fragmentos en carteles para el centro vecinal.",
            "Es un texto breve y, sin embargo, se ha traducido a cientos de idiomas.",
            "Un lector nos preguntó por qué citamos tan a menudo la Declaración Universal; aquí va una pequeña selección.",
        ],
        [
            "Continuaremos el debate en la próxima reunión, abierta a todas las personas interesadas.",
            "El texto completo está disponible en el mostrador de la biblioteca.",
            "¿Cuál de estos artículos crees que se incumple más a menudo hoy en día?",
            "Gracias a todas las personas que participaron y compartieron sus opiniones.",
            "La próxima semana analizaremos los artículos dedicados al trabajo y a la educación.",
        ],
    ),
}

# Natural text in a language the source does not declare (en/fr/es source).
WRONG_LANG_PROSE = {
    "de": [
        "Am Samstag fand auf dem Marktplatz das jährliche Stadtfest statt, und trotz des Regens kamen viele Besucher.",
        "Die Bäckerei am Bahnhof hat nach langer Renovierung wieder geöffnet und bietet jetzt auch Frühstück an.",
        "Viele Eltern wünschen sich, dass die Grundschule mehr Betreuungsplätze am Nachmittag anbietet.",
        "Der neue Radweg entlang des Flusses wird von Pendlern und Familien gleichermaßen gut angenommen.",
        "Im Herbst lohnt sich ein Spaziergang durch den Stadtwald, wenn sich die Blätter gelb und rot färben.",
        "Die Gemeinde plant, im kommenden Jahr eine neue Bibliothek mit längeren Öffnungszeiten zu bauen.",
        "Wer ein gutes Brot backen möchte, braucht vor allem Zeit, denn der Teig muss langsam gehen.",
        "Das Museum zeigt derzeit eine Ausstellung über die Geschichte des Hafens und der Auswanderung.",
        "Die Wettervorhersage kündigt für das Wochenende Sonnenschein und milde Temperaturen an.",
        "Nach dem Konzert blieben viele Zuschauer noch lange auf dem Platz und unterhielten sich.",
    ],
    "it": [
        "Sabato mattina il mercato del paese era pieno di gente, nonostante il cielo nuvoloso.",
        "La biblioteca comunale ha riaperto dopo i lavori e offre ora una sala dedicata ai bambini.",
        "Molti genitori chiedono che la scuola organizzi più attività pomeridiane durante l'inverno.",
        "La nuova pista ciclabile lungo il fiume è molto frequentata da famiglie e studenti.",
        "In autunno conviene fare una passeggiata nei boschi, quando le foglie cambiano colore.",
        "Per preparare un buon sugo di pomodoro servono pazienza, olio d'oliva e ingredienti freschi.",
        "Il museo cittadino ospita una mostra sulla storia del porto e dei suoi lavoratori.",
        "Le previsioni del tempo annunciano sole e temperature miti per tutto il fine settimana.",
        "Dopo il concerto, molte persone sono rimaste in piazza a chiacchierare fino a tardi.",
        "Il comune ha promesso di migliorare i trasporti pubblici verso i quartieri periferici.",
    ],
}

# Clean texts that are emitted mojibaked (UTF-8 bytes read as Windows-1252 / Latin-1).
MOJIBAKE_SOURCES = [
    (
        "fr",
        "L’été dernier, nous avons passé deux semaines dans un petit village de la Drôme. Les matinées étaient fraîches, mais l’après-midi la chaleur devenait écrasante. Nous avons découvert des marchés où l’on vendait du miel, des olives et des abricots délicieux. Le soir, tout le monde se retrouvait sur la place pour jouer aux boules et bavarder jusqu’à la tombée de la nuit.",
    ),
    (
        "fr",
        "« C’est la première fois que je vois autant de monde à la fête du village », m’a confié une habitante âgée de quatre-vingt-dix ans. Les enfants ont défilé avec des lampions, les pompiers ont préparé des crêpes et la fanfare a joué jusqu’à minuit. Même la pluie, arrivée vers vingt-deux heures, n’a pas découragé les danseurs.",
    ),
    (
        "fr",
        "Le conseil municipal a approuvé mercredi la création d’une crèche supplémentaire près de la gare. Les travaux débuteront à l’automne et devraient durer environ dix-huit mois. Cette décision répond à une demande forte des jeunes parents, qui attendent souvent plus d’un an avant d’obtenir une place. Le coût du projet est estimé à 1,2 million d’euros.",
    ),
    (
        "fr",
        "Après trois années d’études à l’étranger, Hélène est revenue s’installer dans la ferme de ses grands-parents. Elle y cultive désormais des légumes biologiques qu’elle vend directement aux restaurants de la région. « Le travail est dur, mais je n’ai jamais été aussi heureuse », explique-t-elle en souriant devant ses serres.",
    ),
    (
        "fr",
        "Les élèves du lycée Émile-Zola ont présenté jeudi leur projet de journal en ligne. Pendant six mois, ils ont appris à vérifier leurs sources, à interviewer des élus et à écrire des articles courts et précis. Leur premier numéro, consacré à l’écologie dans le quartier, a déjà été lu par plusieurs centaines de personnes.",
    ),
    (
        "es",
        "El pasado fin de semana, cientos de vecinos participaron en la limpieza del río a su paso por el pueblo. Armados con guantes y bolsas, recogieron plásticos, latas y hasta un viejo sillón. «Es increíble la cantidad de basura que se acumula en un año», comentó una de las organizadoras, que ya prepara la próxima jornada para la primavera.",
    ),
    (
        "es",
        "¿Quién no ha soñado alguna vez con dejarlo todo y abrir una pequeña librería? Eso es exactamente lo que hizo Begoña, una antigua ingeniera que decidió cambiar de vida a los cincuenta años. Su tienda, situada en una calle tranquila del casco antiguo, organiza presentaciones de libros, talleres para niños y tertulias los miércoles por la tarde.",
    ),
    (
        "es",
        "La campaña de vacunación antigripal comenzará el próximo lunes en todos los centros de salud de la región. Las autoridades sanitarias recomiendan especialmente la vacuna a las personas mayores de sesenta y cinco años, a las embarazadas y a quienes padecen enfermedades crónicas. No es necesario pedir cita previa durante la primera semana.",
    ),
    (
        "es",
        "Después de años de obras, la estación de tren ha recuperado su antiguo reloj y la fachada original de piedra. Los viajeros disponen ahora de una sala de espera más amplia, una cafetería y aparcamiento para bicicletas. El alcalde señaló que la reforma mejorará la conexión con la capital y atraerá a más turistas durante el verano.",
    ),
    (
        "en",
        "The café’s new menu — launched on Monday — includes a crème brûlée that regulars are already calling “the best in town”. The owner, who trained in Lyon, says she wanted to bring a little of the French countryside to the high street. Prices start at €4.50 for a coffee and pastry, which seems fair for such a central location.",
    ),
    (
        "en",
        "“We didn’t expect so many people,” admitted the organiser of Saturday’s charity run, which raised more than £12,000 for the children’s hospital. Runners of all ages took part — some in fancy dress, others pushing prams — and the weather stayed dry until the very last finisher crossed the line.",
    ),
    (
        "en",
        "Our naïve assumption was that the old piano would simply need tuning. In fact, the restorer found that several keys were cracked, the felt had been eaten by moths and the frame had a small fracture. The repair took almost four months, but the instrument now sounds wonderful and is back in the school’s music room.",
    ),
]

# Natural texts containing personal data; {KEY...} placeholders are filled with seeded
# random fake secrets.  pii: the exact strings that a scrubber must remove.
PII_DOCS = [
    (
        "en",
        "If you have questions about the allotment waiting list, please write to the secretary, Jane Doe, at jane.doe@example.com or call her on +44 20 7946 0958 between six and eight in the evening. Applications received after the end of March will be considered for the following season, and we will confirm every application by email within two weeks.",
        ["jane.doe@example.com", "+44 20 7946 0958"],
    ),
    (
        "en",
        "Thanks for reporting the login problem. Our logs show repeated failed attempts from 203.0.113.45 and 198.51.100.23 between midnight and two in the morning, so we have temporarily blocked both addresses. If you were travelling and these were your own attempts, reply to support@example.org and we will unlock the account as soon as possible.",
        ["203.0.113.45", "198.51.100.23", "support@example.org"],
    ),
    (
        "en",
        "A quick warning for anyone following the tutorial: in step four I accidentally pasted my real key, {KEY_SK_PROJ}, into the example configuration. It has now been revoked, but please never share secrets in public forums, and keep them in environment variables rather than in your code or your screenshots.",
        ["{KEY_SK_PROJ}"],
    ),
    (
        "en",
        "The school office has a new phone number: (212) 555-0187. Parents who need to report an absence can also send a message to attendance@school.example.org before nine o'clock. Please remember to include your child's full name and class, and let us know how long you expect the absence to last.",
        ["(212) 555-0187", "attendance@school.example.org"],
    ),
    (
        "en",
        "For the server migration, the old database host at 192.0.2.10 will be switched off on Friday evening. The new machine answers on 2001:db8:85a3::8a2e:370:7334, and the deployment key is stored in the vault as AKIAIOSFODNN7EXAMPLE. Contact the engineer on call at +1 415 555 0132 if anything goes wrong during the weekend.",
        [
            "192.0.2.10",
            "2001:db8:85a3::8a2e:370:7334",
            "AKIAIOSFODNN7EXAMPLE",
            "+1 415 555 0132",
        ],
    ),
    (
        "en",
        "Lost: a small brown dog answering to the name of Biscuit, last seen near the park gates on Tuesday afternoon. He is friendly but nervous around traffic. If you see him, please ring Tom on 020 7946 0321 or email tom.baker@example.com, and we will come and collect him straight away. A reward is offered for his safe return.",
        ["020 7946 0321", "tom.baker@example.com"],
    ),
    (
        "en",
        "To pay the membership fee by bank transfer, use the club's account GB82 WEST 1234 5698 7654 32 and write your surname as the reference. Please do not send card details such as 4111 1111 1111 1111 by email, even if someone asks you to; the treasurer will never request them, and neither will the committee.",
        ["GB82 WEST 1234 5698 7654 32", "4111 1111 1111 1111"],
    ),
    (
        "en",
        "Hi everyone, the GitHub token that appeared in yesterday's build log ({KEY_GHP}) has been rotated. Please pull the latest configuration and ping @devops_lead on the chat if your pipeline still fails after lunch. We are also moving the status page to a new address next week, so remember to update your bookmarks.",
        ["{KEY_GHP}", "@devops_lead"],
    ),
    (
        "en",
        "Reminder to the team: the staging server now lives at 198.51.100.14, and the shared dashboard password has been changed. The old key for the weather service, {KEY_SK_TEST}, will stop working on Monday, and the new one is in the team vault. Questions to ops@example.com, please, and not to my personal number.",
        ["198.51.100.14", "{KEY_SK_TEST}", "ops@example.com"],
    ),
    (
        "fr",
        "Pour toute question concernant l'inscription à la chorale, vous pouvez écrire à marie.dupont@example.org ou appeler le 01 99 00 12 34 du lundi au vendredi, entre dix heures et midi. Les répétitions reprendront le premier mardi d'octobre dans la salle des fêtes, et les nouveaux choristes sont toujours les bienvenus.",
        ["marie.dupont@example.org", "01 99 00 12 34"],
    ),
    (
        "fr",
        "Suite à plusieurs tentatives de connexion suspectes depuis l'adresse 198.51.100.77, nous avons bloqué temporairement votre compte par mesure de sécurité. Si vous êtes à l'origine de ces connexions, contactez notre service client au +33 1 99 00 45 67 ou à l'adresse aide@example.com, et nous réactiverons l'accès dans la journée.",
        ["198.51.100.77", "+33 1 99 00 45 67", "aide@example.com"],
    ),
    (
        "fr",
        "Attention : la clé d'API publiée par erreur dans notre documentation, {KEY_SK_LIVE}, a été désactivée ce matin. Merci de générer une nouvelle clé depuis votre espace personnel et de ne jamais la copier dans un dépôt public. En cas de difficulté, écrivez-nous à securite@example.org et nous vous répondrons rapidement.",
        ["{KEY_SK_LIVE}", "securite@example.org"],
    ),
    (
        "es",
        "Si tienes dudas sobre el campamento de verano, escribe a info.campamento@example.org o llama al +34 810 12 34 56 de lunes a viernes por la mañana. Las plazas son limitadas y se adjudicarán por orden de inscripción, así que te recomendamos no esperar al último momento para enviar la solicitud.",
        ["info.campamento@example.org", "+34 810 12 34 56"],
    ),
    (
        "es",
        "Hemos detectado accesos no autorizados desde la dirección IP 203.0.113.200 durante la madrugada del sábado. Por seguridad, hemos cambiado las contraseñas de todos los usuarios del foro. Si necesitas ayuda para recuperar tu cuenta, envía un mensaje a soporte@example.com o llama al 810 12 34 57 en horario de oficina.",
        ["203.0.113.200", "soporte@example.com", "810 12 34 57"],
    ),
    (
        "es",
        "Recordatorio para los socios: la cuota anual puede pagarse mediante transferencia a la cuenta ES91 2100 0418 4502 0005 1332, indicando el nombre completo en el concepto. Para cualquier consulta sobre los pagos o los recibos, contacta con la tesorera, Lucía Gómez, en lucia.gomez@example.org o pásate por la sede los martes.",
        ["ES91 2100 0418 4502 0005 1332", "lucia.gomez@example.org"],
    ),
]

# Prose with stray code / markup lines (keep after line-level code removal).
CODE_MIXED_DOCS = [
    (
        "en",
        [
            "Our allotment society finally has a website, built by two volunteers over the winter.",
            '<script src="https://cdn.example.com/analytics.js"></script>',
            "You will find the plot map, the rules for new members and the calendar of work mornings, together with photographs from last year's harvest lunch.",
            "var _q = window._q || []; _q.push(['track', 'pageview']);",
            "If something does not work on your phone, please tell us at the next meeting rather than giving up on the site altogether.",
        ],
    ),
    (
        "en",
        [
            "The recipe below makes two small loaves or one large one, and it can easily be doubled for a family gathering.",
            "Mix the flour and salt in a large bowl, then add the warm water and stir until there are no dry patches left.",
            "function trackClick(e) { window.dataLayer.push({event: 'recipe_click'}); }",
            "}",
            "Leave the dough to rest for an hour, fold it twice, and bake it in a very hot oven until the crust sounds hollow when tapped.",
        ],
    ),
    (
        "en",
        [
            "Several readers asked how we generate the weekly bird counts that appear on the front page of the club newsletter.",
            '{"species": 23, "observers": 11, "site": "estuary"}',
            "In short, every member sends in a simple list after each walk, and one volunteer adds the numbers together on Sunday evening.",
            "The totals are only rough estimates, but over several years they show clear changes in which birds visit the marsh in winter.",
        ],
    ),
    (
        "fr",
        [
            "La médiathèque propose désormais un catalogue en ligne qui permet de réserver des livres depuis chez soi.",
            "<script>document.addEventListener('DOMContentLoaded', function() { initCatalogue(); });</script>",
            "Il suffit de se connecter avec le numéro de sa carte de lecteur, puis de choisir la bibliothèque où l'on souhaite retirer ses documents.",
            "Les bibliothécaires restent bien sûr disponibles pour aider celles et ceux qui préfèrent passer au comptoir.",
        ],
    ),
    (
        "es",
        [
            "El ayuntamiento ha publicado un nuevo mapa interactivo con todos los carriles bici de la ciudad y los aparcamientos disponibles.",
            "if (window.innerWidth < 600) { loadMobileMap(); } else { loadDesktopMap(); }",
            "Los ciclistas pueden consultar el estado de las obras, proponer mejoras y señalar los cruces que consideran peligrosos.",
            "Según el concejal de movilidad, las sugerencias de los vecinos se tendrán en cuenta en el plan del próximo año.",
        ],
    ),
    (
        "es",
        [
            "Nuestro club de montaña ha organizado para el mes de mayo una salida de dos días por los Picos de Europa.",
            "<style>.banner { display: none; } #footer { margin: 0 auto; }</style>",
            "La ruta es exigente pero accesible para cualquier persona acostumbrada a caminar, y dormiremos en un refugio con capacidad para treinta personas.",
            "Las inscripciones se cerrarán en cuanto se completen las plazas, así que no lo dejes para el último día.",
        ],
    ),
]

# Documents that are mostly code or markup (drop).
CODE_ONLY_DOCS = [
    "<script type=\"text/javascript\">\nvar _gaq = _gaq || [];\n_gaq.push(['_setAccount', 'UA-000000-1']);\n_gaq.push(['_trackPageview']);\n(function() {\n  var ga = document.createElement('script'); ga.async = true;\n  ga.src = ('https:' == document.location.protocol ? 'https://ssl' : 'http://www') + '.example.com/ga.js';\n  var s = document.getElementsByTagName('script')[0]; s.parentNode.insertBefore(ga, s);\n})();\n</script>",
    "body { margin: 0; padding: 0; font-family: Arial, sans-serif; }\n.header { background: #fff; border-bottom: 1px solid #ddd; }\n.nav li { display: inline-block; padding: 0 12px; }\n.nav li a:hover { color: #c00; text-decoration: underline; }\n@media (max-width: 600px) { .nav li { display: block; } }",
    '{\n  "status": "ok",\n  "page": 3,\n  "per_page": 20,\n  "items": [\n    {"id": 101, "title": "Item A", "price": 9.99, "tags": ["new", "sale"]},\n    {"id": 102, "title": "Item B", "price": 14.5, "tags": []}\n  ],\n  "next": "/api/items?page=4"\n}',
    '!function(e,t){"use strict";var n=e.document,r=Object.getPrototypeOf,i=[].slice,o=[].push;function a(e,t){return t.toUpperCase()}var s=/^-ms-/,u=/-([a-z])/g;e.$=e.jQ=function(t){return new a.fn.init(t)};for(var l=0;l<o.length;l++){if(!r(o[l]))continue;i.call(o,l,1)}}(window,void 0);',
    '<div class="row"><div class="col-md-6"><a href="/cart" onclick="addToCart(42); return false;">Add</a></div>\n<div class="col-md-6"><span id="price">{{ product.price | currency }}</span></div></div>\n<script>$(function(){ $(\'#price\').tooltip({placement: \'top\'}); });</script>',
    "<?php\nif (isset($_GET['page'])) {\n    $page = intval($_GET['page']);\n} else {\n    $page = 1;\n}\n$rows = $db->query(\"SELECT * FROM posts LIMIT 10 OFFSET \" . ($page - 1) * 10);\nforeach ($rows as $row) { echo '<li>' . htmlspecialchars($row['title']) . '</li>'; }\n?>",
]

SHORT_DOCS = [
    "Click here to read more.",
    "Loading...",
    "Page not found.",
    "Share this article:",
    "Subscribe to our newsletter",
    "Thanks for watching!",
    "Posted in Uncategorized",
    "© 2023 All rights reserved.",
    "Read more »",
    "Accept all cookies",
    "Lire la suite",
    "Page introuvable.",
    "Merci de votre visite !",
    "Tous droits réservés.",
    "Partager sur Facebook",
    "Leer más",
    "Página no encontrada.",
    "Gracias por tu visita.",
    "Todos los derechos reservados.",
    "Suscríbete ahora",
]

REP_CHAR_DOCS = [
    "This is honestly the best day of my whole life and I am so happy right now because my sister finally came home from her long trip abroad "
    + "!" * 300,
    "I waited for the bus for two hours in the rain this morning and I am so bored that I could fall asleep right here on the pavement "
    + "zzz " * 100,
    "That joke you told me at lunch today was the funniest thing I have heard in years and I still cannot stop laughing "
    + "ha " * 150,
    "Why did they cancel my favourite show after only one season when everyone I know was watching it every week "
    + "no " * 120,
    "Please wait while the page is loading for you and your friends, this can take a few minutes on a slow connection so do not close the window "
    + "." * 400,
    "Best comment I have ever read on this forum, I showed it to my whole family at dinner and we all agreed "
    + "lol " * 120,
    "We love you so much and we will always support you no matter what happens next season, you are the best team in the world "
    + "<3 " * 150,
    "Score update for the match this evening at the local stadium, the home team is winning by two goals at half time "
    + "-" * 400,
    "My cat walked across the keyboard while I was writing this post about our holiday in the mountains last summer, sorry "
    + "jk " * 100,
    "a" * 500,
]

REP_LINE_DOCS = [
    "Add to cart\n" * 40,
    "Home | About us | Products | Contact\n" * 25 + "Welcome to our shop.",
    "Subscribe to our newsletter for the latest deals and offers.\n" * 20,
    "Error: connection timed out, retrying in five seconds...\n" * 30,
    "Follow us on social media for more updates and news.\n" * 15
    + "Thank you for reading.",
    "Cliquez ici pour en savoir plus sur nos offres.\n" * 20,
    "Haga clic aquí para ver todas nuestras ofertas.\n" * 20,
    "Our office is closed today.\n" + "Tags: news, local, weather, community\n" * 15,
    "This item is currently out of stock.\n" * 25,
    "Votre panier est vide.\n" * 15 + "Continuer vos achats",
]

# (intro sentence, boilerplate repeated inside one paragraph)
REP_NGRAM_DOCS = [
    (
        "en",
        "We sell garden furniture made by hand in our own workshop.",
        "Best price guaranteed with free shipping on all orders over fifty dollars.",
    ),
    (
        "en",
        "Welcome to the official page of the Riverside holiday cottages.",
        "Book now and get the best rates for your stay with free cancellation.",
    ),
    (
        "en",
        "This recipe for lemon cake is one of our most popular posts.",
        "Do not forget to like and share this post with your friends and family.",
    ),
    (
        "en",
        "Our team of lawyers has more than twenty years of experience.",
        "Call us today for a free consultation with one of our experienced lawyers.",
    ),
    (
        "en",
        "The new phone comes in three colours and two sizes.",
        "Click the link below to find out more about this amazing offer today.",
    ),
    (
        "en",
        "Thank you for visiting the website of the Northfield dental clinic.",
        "Our friendly staff will be happy to answer all of your questions.",
    ),
    (
        "fr",
        "Nous vendons des meubles de jardin fabriqués dans notre atelier.",
        "Livraison gratuite pour toute commande de plus de cinquante euros en France.",
    ),
    (
        "fr",
        "Bienvenue sur le site de notre camping au bord de la mer.",
        "Réservez dès maintenant pour profiter des meilleurs tarifs de la saison.",
    ),
    (
        "fr",
        "Cette recette de tarte aux pommes est très facile à réaliser.",
        "N'oubliez pas de partager cet article avec vos amis et votre famille.",
    ),
    (
        "es",
        "Vendemos muebles de jardín fabricados en nuestro propio taller.",
        "Envío gratis en todos los pedidos de más de cincuenta euros a toda España.",
    ),
    (
        "es",
        "Bienvenido a la página oficial de nuestro hotel en la costa.",
        "Reserve ahora y consiga las mejores tarifas con cancelación gratuita.",
    ),
    (
        "es",
        "Esta receta de bizcocho de limón es una de las más visitadas.",
        "No olvides compartir esta receta con tus amigos y con toda tu familia.",
    ),
]

SYMBOL_DOCS = [
    "🔥😍 #summer 💯👉 #beach 🎉🚀 #sunset 💰✨ #travel 😂🙌 #friends 🌸🌈 #love ❤️💕 #happy 😘💋 #weekend 🍹🍕 #food 🐶🐱 #pets ⚽🏀 #sport 🎵🎶 #music 📷🎥 #photo 🌍✈️ #world 🏖️🌴 #island 😎🤩 #fun 🍦🍩 #sweet 💪🏋️ #gym 🚗🛵 #ride 🎂🎁 #party",
    "Shirt: $19.99 | Jeans: $24.99 | Jacket: $89.90 | Socks: $4.99 | Scarf: $12.50 | Hat: $9.95 | Belt: $14.00 | Gloves: $7.45 | Boots: $74.99 | Dress: $39.90 | Skirt: $22.75 | Shorts: $15.30 | Coat: $129.00 | Tie: $11.20 | Vest: $18.60 | Cap: $8.80 | Bag: $45.00 | Watch: $99.99 | Ring: $59.00 | Wallet: $27.40 | Umbrella: $13.10",
    "★★★★★ (4.8/5) • 1,204 reviews • ✓ stock • ➤ ships 2–3 days • ♥ 356 likes • ☎ 24/7 support • ✉ newsletter • ⚑ #1 seller • ☀ 21°C today • ☂ 30% rain • ⌚ 10:45 • ✈ 07:15 → 09:40 • ⚡ 85% battery • ♻ 100% recycled • ✂ −15% sale • ⚙ v2.3.1 • 🎁 gift wrap • 🚚 free delivery • 🔒 secure checkout • © 2023 shop",
    "Q1: 12.5% | Q2: 13.7% | Q3: 14.2% | Q4: 15.9% || revenue: 1,204 | costs: 1,387 | margin: 1,522 | staff: 1,689 | units: 1,845 || avg = 3.41; max = 7.92; min = 0.18; n = 256; sd = 1.07; p < 0.05; r = 0.63; k = 12; t = 4.2; df = 98; ci = [0.41, 0.77]; rmse = 0.09",
    "Mon 07:00–19:00 | Tue 07:00–19:00 | Wed 07:00–21:00 | Thu 07:00–19:00 | Fri 07:00–22:00 | Sat 09:00–22:00 | Sun 10:00–16:00 || Bus 12 → 07:05, 07:35, 08:05 | Bus 14 → 07:20, 07:50 | Tram 3 → every 10 min | Train → 06:58, 07:28, 07:58 || Library 10:00–18:00 | Pool 06:30–21:30 | Gym 06:00–23:00 | Museum 10:00–17:00 | Market 08:00–13:00",
    "🔥🔥🔥 😍😍😍 💯💯💯 👉👉 🎉🎉🎉 🚀🚀 💰💰💰 ✨✨ 😂😂😂 🙌🙌 🔥🔥 💯 👉 🎉 🚀 💰 ✨ 😂 🙌 🔥🔥🔥",
    "★★★★★ ☆☆☆☆ ✓✓✓ ✔✔✔ ➤➤➤ ♥♥♥ ♦♦♦ ●●● ■■■ ▲▲▲ ◆◆◆ ✦✦✦ ★★★★★ ☆☆☆☆ ✓✓✓ ✔✔✔ ➤➤➤ ♥♥♥",
    "##### ***** ===== ----- +++++ ///// ~~~~~ <<<>>> |||| #### ***** ===== ----- +++++ ///// ~~~~~",
    "07 - 12 - 23 - 34 - 41 - 45 | 03 - 09 - 18 - 27 - 33 - 48 | 05 - 11 - 19 - 28 - 36 - 44 | 02 - 14 - 21",
    "∑ ∫ √ ∞ ≈ ≠ ≤ ≥ ± × ÷ π Ω µ ∆ ∂ ∇ ∈ ∉ ∩ ∪ ⊂ ⊃ ∀ ∃ ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ ± ×",
    "→ ← ↑ ↓ ↔ ⇒ ⇐ ⇔ ➜ ➔ ➙ ➛ → ← ↑ ↓ ↔ ⇒ ⇐ ⇔ ➜ ➔ ➙ ➛ → ← ↑ ↓",
    "═══ ║ ╔═══╗ ╚═══╝ ░░░ ▒▒▒ ▓▓▓ ███ ═══ ║ ╔═══╗ ╚═══╝ ░░░ ▒▒▒ ▓▓▓ ███ ═══ ║",
]

SEO_DOCS = [
    (
        "en",
        "cheap flights london paris rome barcelona hotels deals discount tickets last minute holidays inclusive budget travel booking cheapest airfare weekend breaks city breaks cruise packages family resorts",
    ),
    (
        "en",
        "best running shoes men women sale discount trainers outlet cheap sneakers free delivery size guide 2023 top rated marathon training gear sports socks waterproof jackets",
    ),
    (
        "en",
        "plumber london emergency plumbing services boiler repair leak detection drain unblocking local heating engineer gas safe bathroom fitting kitchen taps radiator installation quotes",
    ),
    (
        "en",
        "weight loss tips fast diet pills keto recipes fat burner detox tea slim belly workout plan lose weight quickly protein shakes meal replacement calorie counter vegan snacks",
    ),
    (
        "en",
        "car insurance quotes compare online best rates young drivers instant quote van insurance classic cars breakdown cover motor policy renewal discount comprehensive cheap",
    ),
    (
        "en",
        "iphone case samsung cover screen protector charger cable wireless charging accessories wholesale tablet stand bluetooth headphones power bank smartwatch strap",
    ),
    (
        "en",
        "wedding dresses bridal gowns lace dress plus size bridesmaid online shop 2023 collection evening prom veils shoes accessories boutique tailoring alterations",
    ),
    (
        "en",
        "crypto bitcoin ethereum trading signals altcoin price prediction exchange wallet airdrop staking profit news mining rigs blockchain tokens portfolio tracker",
    ),
    (
        "fr",
        "vol low cost paris nice billet avion promo hôtel réduction réservation vacances dernière minute séjour location voiture croisière camping mobil-home week-end thalasso",
    ),
    (
        "fr",
        "plombier paris urgence 24h dépannage plomberie fuite chaudière débouchage canalisation devis gratuit chauffagiste installation ballon salle bain rénovation",
    ),
    (
        "es",
        "vuelos baratos madrid barcelona ofertas hoteles viajes última hora paquetes vacaciones todo incluido reserva online cruceros escapadas fin semana alquiler coches",
    ),
    (
        "es",
        "zapatillas running hombre mujer rebajas outlet deportivas baratas envío gratis tallas ofertas 2023 camisetas técnicas mallas calcetines relojes deportivos",
    ),
]

ADULT_DOCS = [
    (
        "en",
        "Looking for something hot tonight? Watch the best free porn videos and live sex cams on our site. Thousands of naked girls are waiting for you in the xxx chat rooms, so sign up now and get your first hour of nude webcam shows for free.",
    ),
    (
        "en",
        "Welcome to the hottest adult site on the web, where you can find free porn, real amateur sex tapes and xxx videos that are updated every day. Join today and chat with horny singles from your area who want to meet you tonight.",
    ),
    (
        "en",
        "Are you bored at home? Click here for free xxx porn and sex videos, nude photos and live cams with the sexiest models in the world. No credit card is needed and every new member gets a bonus of fifty free porn tokens.",
    ),
    (
        "en",
        "This is not a dating site, it is the largest collection of porn on the internet. We have more than a million sex videos, xxx cams and nude galleries, and all of them are free to watch on your phone or your computer.",
    ),
    (
        "en",
        "Hot singles in your town want to chat with you right now! Create a free account to watch their nude webcam shows, send them private messages and enjoy unlimited xxx porn and sex videos without any hidden fees.",
    ),
    (
        "fr",
        "Vous cherchez des vidéos porno gratuites ? Notre site propose des milliers de films de sexe, des webcams coquines et des photos nues de femmes qui vous attendent ce soir. Inscrivez-vous maintenant et profitez du chat sexe en direct avec elles.",
    ),
    (
        "fr",
        "Bienvenue sur le meilleur site porno de France, où vous trouverez du sexe amateur, des vidéos xxx mises à jour chaque jour et des webcams en direct. L'inscription est gratuite et vous pouvez discuter avec des femmes nues de votre région.",
    ),
    (
        "es",
        "¿Buscas vídeos porno gratis? En nuestra web encontrarás miles de películas de sexo, webcams en directo y fotos de chicas desnudas que te esperan esta noche. Regístrate ahora y disfruta del chat de sexo sin pagar nada.",
    ),
    (
        "es",
        "Bienvenido al mejor sitio porno en español, con vídeos de sexo amateur, contenido xxx actualizado cada día y chicas desnudas en directo. El registro es gratuito y puedes hablar con mujeres de tu ciudad que quieren sexo hoy.",
    ),
    (
        "en",
        "xxx sex porn xxx sex porn live cams nude girls xxx porn sex webcam free xxx",
    ),
]

BROKEN_LINES = [
    (
        "bad-json-001",
        '{"id": "bad-json-001", "text": "This line is cut off in the middle of a rec',
    ),
    (
        "bad-json-002",
        "{'id': 'bad-json-002', 'text': 'single quotes are not valid JSON'}",
    ),
    ("bad-json-003", "bad-json-003 this line is plain text, not a JSON object"),
    (
        "bad-json-004",
        '{"id": "bad-json-004", "text": "trailing garbage after the object"} }',
    ),
    (
        "bad-type-001",
        '{"id": "bad-type-001", "text": 12345, "url": "https://www.example.com/numbers"}',
    ),
    (
        "bad-notext-001",
        '{"id": "bad-notext-001", "url": "https://www.example.org/missing-text", "title": "No text field"}',
    ),
    (
        "bad-null-001",
        '{"id": "bad-null-001", "text": null, "url": "https://www.example.org/null-text"}',
    ),
    (
        "bad-empty-001",
        '{"id": "bad-empty-001", "text": "", "url": "https://www.example.org/empty-text"}',
    ),
    ("bad-array-001", '["bad-array-001", "a JSON array, not an object"]'),
]

FLAGGED = re.compile(r"\b(sex|sexe|sexo|sexual|sexuel)\w*", re.IGNORECASE)
# UDHR sentences that lean on the previous sentence read badly out of context.
ANAPHORIC_STARTS = {
    "they",
    "it",
    "this",
    "these",
    "he",
    "she",
    "such",
    "furthermore",
    "nor",
    "elle",
    "il",
    "ils",
    "elles",
    "ce",
    "cette",
    "ces",
    "de",
    "en",
    "este",
    "esta",
    "estos",
    "ella",
    "él",
    "tampoco",
    "asimismo",
    "ellos",
    "dichos",
    "sie",
    "er",
    "dieses",
    "dies",
    "diese",
    "essa",
    "esso",
    "esse",
    "tale",
    "tali",
    "egli",
}
SENT_SPLIT = re.compile(r"(?<=[.;!?])\s+|\n+")


# --------------------------------------------------------------------------------------------
def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(max(0, len(w) - n + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def dup_5gram_fraction(text: str) -> float:
    w = words(text)
    grams = [tuple(w[i : i + 5]) for i in range(len(w) - 4)]
    if not grams:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    dups = 0
    for g in grams:
        if g in seen:
            dups += 1
        seen.add(g)
    return dups / len(grams)


def word_repetition(text: str, n: int = 5) -> float:
    """Share of word n-gram occurrences whose n-gram occurs more than once (ROOTS's measure)."""
    w = words(text)
    grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
    if not grams:
        return 0.0
    counts: dict[tuple[str, ...], int] = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    return sum(c for c in counts.values() if c > 1) / len(grams)


def char_repetition(text: str, n: int = 10) -> float:
    """ROOTS's character-repetition ratio with k = min(isqrt(#distinct), #n-grams seen more than once)."""
    total = len(text) - n + 1
    if total <= 0:
        return 0.0
    counts: dict[str, int] = {}
    for i in range(total):
        g = text[i : i + n]
        counts[g] = counts.get(g, 0) + 1
    freqs = sorted(counts.values(), reverse=True)
    k = min(math.isqrt(len(freqs)), sum(1 for f in freqs if f > 1))
    return sum(freqs[:k]) / total if k > 0 else 0.0


def udhr_sentences(code: str) -> list[str]:
    out = []
    prefix = f"udhr-{code}-art"
    with UDHR.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if not rec["id"].startswith(prefix):
                continue
            for s in SENT_SPLIT.split(rec["text"]):
                s = s.strip()
                first = s.split()[0].lower().strip(",.;:") if s else ""
                if (
                    8 <= len(s.split()) <= 60
                    and not FLAGGED.search(s)
                    and first not in ANAPHORIC_STARTS
                ):
                    if s[-1] in ";:,":
                        s = s[:-1] + "."
                    out.append(s[0].upper() + s[1:])
    return out


def sloppy_cp1252(text: str) -> str:
    """UTF-8 bytes mis-decoded as Windows-1252 (undefined bytes map to U+0080..U+009F)."""
    raw = text.encode("utf-8")
    return "".join(
        bytes([b]).decode("cp1252")
        if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
        else chr(b)
        for b in raw
    )


class Builder:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.records: list[dict] = []
        self.expected: dict[str, dict] = {}
        self.keep_shingles: list[tuple[str, set]] = []
        self.counters: dict[str, int] = {}

    def next_id(self, prefix: str) -> str:
        n = self.counters.get(prefix, 0) + 1
        self.counters[prefix] = n
        return f"{prefix}-{n:03d}"

    def add(self, rid: str, text, url: str, expected: dict) -> dict:
        rec = {"id": rid, "text": text, "url": url}
        self.records.append(rec)
        self.expected[rid] = expected
        return rec

    def accept_keep(self, text: str) -> bool:
        if (
            len(text.split()) < KEEP_MIN_WORDS
            or word_repetition(text) > KEEP_MAX_WORD_REP
            or char_repetition(text) > KEEP_MAX_CHAR_REP
        ):
            return False
        sh = shingles(text)
        return all(
            jaccard(sh, other) <= KEEP_MAX_JACCARD for _, other in self.keep_shingles
        )

    def register_keep(self, rid: str, text: str) -> None:
        self.keep_shingles.append((rid, shingles(text)))

    # ---- kept documents ------------------------------------------------------------------
    def topic_docs(
        self,
        lang: str,
        topics: dict[str, list[str]],
        per_topic: int,
        hosts: list[str],
        paged_topics: tuple[str, ...],
    ) -> None:
        rng = self.rng
        for topic, sents in topics.items():
            made = 0
            for _attempt in range(400):
                if made == per_topic:
                    break
                k = rng.randint(3, 8)
                idx = sorted(rng.sample(range(len(sents)), k))
                chosen = [sents[i] for i in idx]
                if k >= 6 and rng.random() < 0.6:
                    cut = rng.randint(2, k - 2)
                    text = " ".join(chosen[:cut]) + "\n\n" + " ".join(chosen[cut:])
                else:
                    text = " ".join(chosen)
                if not self.accept_keep(text):
                    continue
                made += 1
                rid = self.next_id(f"keep-{lang}")
                if topic in paged_topics:
                    url = f"https://forum.example.org/{lang}/t/{topic}?page={made}"
                else:
                    host = hosts[rng.randrange(len(hosts))]
                    url = f"https://{host}/{topic}-{rng.randint(100, 999)}"
                self.add(
                    rid,
                    text,
                    url,
                    {
                        "class": "keep",
                        "expected": "keep",
                        "lang": lang,
                        "kind": "topic prose",
                        "topic": topic,
                    },
                )
                self.register_keep(rid, text)

    def udhr_docs(self, lang: str, code: str, count: int, hosts: list[str]) -> None:
        rng = self.rng
        pool = udhr_sentences(code)
        frames, closings = FRAMES[lang]
        made = 0
        for _attempt in range(3000):
            if made == count:
                break
            k = rng.randint(2, 5)
            body = rng.sample(pool, k)
            parts = [frames[rng.randrange(len(frames))]] + body
            if rng.random() < 0.6:
                parts.append(closings[rng.randrange(len(closings))])
            if rng.random() < 0.5:
                text = parts[0] + "\n\n" + " ".join(parts[1:])
            else:
                text = " ".join(parts)
            if not self.accept_keep(text):
                continue
            made += 1
            rid = self.next_id(f"keep-{lang}")
            host = hosts[rng.randrange(len(hosts))]
            url = f"https://{host}/udhr-extracts/{rng.randint(1000, 9999)}"
            self.add(
                rid,
                text,
                url,
                {
                    "class": "keep",
                    "expected": "keep",
                    "lang": lang,
                    "kind": "UDHR sentences with framing prose",
                },
            )
            self.register_keep(rid, text)
        assert made == count, (lang, made)

    # ---- noisy documents -----------------------------------------------------------------
    def simple_class(
        self, prefix: str, texts, expected: str, reason: str, host: str
    ) -> None:
        for item in texts:
            lang, text = item if isinstance(item, tuple) else (None, item)
            rid = self.next_id(prefix)
            exp = {"class": prefix, "expected": expected, "reason": reason}
            if lang:
                exp["lang"] = lang
            self.add(
                rid,
                text,
                f"https://{host}/{prefix}/{self.rng.randint(10000, 99999)}",
                exp,
            )

    def rep_ngram(self) -> None:
        for lang, intro, boiler in REP_NGRAM_DOCS:
            reps = self.rng.randint(6, 9)
            text = intro + " " + " ".join([boiler] * reps)
            rid = self.next_id("rep-ngram")
            self.add(
                rid,
                text,
                f"https://shop.example.com/{lang}/landing-{self.rng.randint(100, 999)}",
                {
                    "class": "rep-ngram",
                    "expected": "drop",
                    "lang": lang,
                    "reason": "repeated word n-grams (boilerplate repeated inside one paragraph)",
                    "dup_5gram_fraction": round(dup_5gram_fraction(text), 3),
                },
            )

    def wrong_lang(self, lang: str, code: str, count: int) -> None:
        prose = WRONG_LANG_PROSE[lang]
        pool = udhr_sentences(code)
        for _ in range(count):
            parts = self.rng.sample(prose, 2) + self.rng.sample(pool, 2)
            self.rng.shuffle(parts)
            text = " ".join(parts)
            rid = self.next_id(f"lang-{lang}")
            self.add(
                rid,
                text,
                f"https://www.example.com/{lang}/artikel-{self.rng.randint(100, 999)}",
                {
                    "class": f"lang-{lang}",
                    "expected": "drop",
                    "lang": lang,
                    "reason": "language not declared by the en/fr/es source",
                },
            )

    def mojibake(self) -> None:
        for i, (lang, clean) in enumerate(MOJIBAKE_SOURCES):
            broken = (
                sloppy_cp1252(clean)
                if i % 4 != 3
                else clean.encode("utf-8").decode("latin-1")
            )
            rid = self.next_id("moji")
            self.add(
                rid,
                broken,
                f"https://archive.example.org/{lang}/old-post-{self.rng.randint(100, 999)}",
                {
                    "class": "moji",
                    "expected": "keep_modified",
                    "lang": lang,
                    "reason": "mojibake (UTF-8 read as "
                    + ("Latin-1" if i % 4 == 3 else "Windows-1252")
                    + "); repaired text should equal `clean`",
                    "clean": clean,
                },
            )
            self.register_keep(rid, clean)

    def fake_key(self, prefix: str, n: int) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return prefix + "".join(
            alphabet[self.rng.randrange(len(alphabet))] for _ in range(n)
        )

    def pii(self) -> None:
        keys = {
            "{KEY_SK_PROJ}": self.fake_key("sk-proj-", 40),
            "{KEY_GHP}": self.fake_key("ghp_", 36),
            "{KEY_SK_TEST}": self.fake_key("sk-test_", 32),
            "{KEY_SK_LIVE}": self.fake_key("sk-live_", 32),
        }
        for lang, text, items in PII_DOCS:
            for k, v in keys.items():
                text = text.replace(k, v)
            items = [keys.get(x, x) for x in items]
            assert all(x in text for x in items), items
            rid = self.next_id("pii")
            self.add(
                rid,
                text,
                f"https://community.example.org/{lang}/notice-{self.rng.randint(100, 999)}",
                {
                    "class": "pii",
                    "expected": "keep_modified",
                    "lang": lang,
                    "reason": "contains PII that must be redacted; the document itself is kept",
                    "pii": items,
                },
            )
            self.register_keep(rid, text)

    def code(self) -> None:
        for lang, lines in CODE_MIXED_DOCS:
            rid = self.next_id("code-mixed")
            text = "\n".join(lines)
            prose = [ln for ln in lines if not re.search(r"[{}<>;]|^\s*}", ln)]
            self.add(
                rid,
                text,
                f"https://www.example.org/{lang}/post-{self.rng.randint(100, 999)}",
                {
                    "class": "code-mixed",
                    "expected": "keep_modified",
                    "lang": lang,
                    "reason": "prose with stray code/markup lines; line-level cleaning removes them "
                    "(a C4-style page-level '{' rule would drop the whole document)",
                    "prose_lines": prose,
                },
            )
            self.register_keep(rid, "\n".join(prose))
        for text in CODE_ONLY_DOCS:
            rid = self.next_id("code-only")
            self.add(
                rid,
                text,
                f"https://dev.example.com/snippets/{self.rng.randint(100, 999)}",
                {
                    "class": "code-only",
                    "expected": "drop",
                    "reason": "mostly code/markup: no natural-language content",
                },
            )

    def duplicates(self) -> None:
        keep = [r for r in self.records if r["id"].startswith("keep-")]
        by_lang = {
            lang: [r for r in keep if r["id"].startswith(f"keep-{lang}-")]
            for lang in ("en", "fr", "es")
        }
        plan = {"en": (7, 7), "fr": (4, 4), "es": (4, 4)}
        tracking = [
            "utm_source=newsletter",
            "utm_source=twitter&utm_medium=social",
            "ref=rss",
            "fbclid=IwAR0example",
            "utm_campaign=spring&utm_source=email",
            "amp=1",
        ]
        for lang, (n_exact, n_near) in plan.items():
            long_docs = [r for r in by_lang[lang] if len(r["text"].split()) >= 100]
            picks = self.rng.sample(long_docs, n_exact + n_near)
            for j, orig in enumerate(picks[:n_exact]):
                url = self.dup_url(orig["url"], tracking, j)
                rid = f"dup-exact-of-{orig['id']}"
                self.add(
                    rid,
                    orig["text"],
                    url,
                    {
                        "class": "dup-exact",
                        "expected": "drop",
                        "lang": lang,
                        "duplicate_of": orig["id"],
                        "reason": "exact duplicate of an earlier record (different URL)",
                    },
                )
            for j, orig in enumerate(picks[n_exact:]):
                text, changed = self.perturb(orig["text"])
                jac = jaccard(shingles(text), shingles(orig["text"]))
                assert jac >= NEAR_DUP_MIN_JACCARD, (orig["id"], jac)
                url = self.dup_url(orig["url"], tracking, j + 1)
                rid = f"dup-near-of-{orig['id']}"
                self.add(
                    rid,
                    text,
                    url,
                    {
                        "class": "dup-near",
                        "expected": "drop",
                        "lang": lang,
                        "duplicate_of": orig["id"],
                        "reason": "near duplicate: a few words changed",
                        "changed_words": changed,
                        "jaccard_word5": round(jac, 3),
                    },
                )

    def dup_url(self, url: str, tracking: list[str], j: int) -> str:
        base = url.split("?")[0]
        if j % 3 == 2:  # syndicated copy on another host, same path
            path = base.split("/", 3)[3]
            return f"https://mirror.example.com/{path}"
        sep = "&" if "?" in url else "?"
        return url + sep + tracking[self.rng.randrange(len(tracking))]

    def perturb(self, text: str) -> tuple[str, list[list[str]]]:
        tokens = text.split(" ")
        candidates = [
            i
            for i, t in enumerate(tokens)
            if t.isalpha() and len(t) > 3 and 5 < i < len(tokens) - 5
        ]
        start = candidates[self.rng.randrange(len(candidates))]
        changed = []
        for i in (start, start + 1):
            old = tokens[i]
            if not old.isalpha() or len(old) < 3:
                continue
            if i > start and self.rng.random() < 0.5:
                new = old.upper()  # a case-only change on the second word
            elif old[-1] != old[-2]:
                new = old[:-2] + old[-1] + old[-2]  # typo: swap the last two letters
            else:
                new = old + "s"
            tokens[i] = new
            changed.append([old, new])
        return " ".join(tokens), changed

    # ---- output ----------------------------------------------------------------------------
    def write(self) -> None:
        rng = self.rng
        dups = [r for r in self.records if r["id"].startswith("dup-")]
        others = [r for r in self.records if not r["id"].startswith("dup-")]
        rng.shuffle(others)
        lines = [json.dumps(r, ensure_ascii=False) for r in others]
        ids = [r["id"] for r in others]
        for d in dups:  # every duplicate lands after its original
            orig_pos = ids.index(self.expected[d["id"]]["duplicate_of"])
            pos = rng.randint(orig_pos + 1, len(lines))
            lines.insert(pos, json.dumps(d, ensure_ascii=False))
            ids.insert(pos, d["id"])
        for rid, raw in BROKEN_LINES:
            pos = rng.randint(1, len(lines))
            lines.insert(pos, raw)
            ids.insert(pos, rid)
            self.expected[rid] = {
                "class": rid.rsplit("-", 1)[0],
                "expected": "invalid",
                "reason": "malformed input line: must be skipped and counted, never crash",
            }
        OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for n, rid in enumerate(ids, start=1):
            self.expected[rid]["line"] = n
        ordered = {rid: self.expected[rid] for rid in ids}
        EXPECTED.write_text(
            json.dumps(ordered, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )


def main() -> None:
    b = Builder()
    en_hosts = [
        "www.example.com",
        "news.example.com",
        "blog.example.org",
        "community.example.org",
    ]
    fr_hosts = ["www.example.org/fr", "actualites.example.com", "blog.example.org/fr"]
    es_hosts = ["noticias.example.com", "www.example.org/es", "blog.example.org/es"]
    b.topic_docs("en", EN_TOPICS, 4, en_hosts, ("community-garden", "home-baking"))
    b.topic_docs("fr", FR_TOPICS, 4, fr_hosts, ("marche-du-samedi",))
    b.topic_docs("es", ES_TOPICS, 4, es_hosts, ("huerto-urbano",))
    b.udhr_docs("en", "eng", 52, en_hosts)
    b.udhr_docs("fr", "fra", 27, fr_hosts)
    b.udhr_docs("es", "spa", 27, es_hosts)
    b.mojibake()
    b.pii()
    b.code()
    b.simple_class(
        "short",
        SHORT_DOCS,
        "drop",
        "too short (fewer than 10 words)",
        "www.example.com",
    )
    b.simple_class(
        "rep-char", REP_CHAR_DOCS, "drop", "character repetition", "social.example.com"
    )
    # ROOTS's word removal drops a long word that strips to nothing (a run of "!" or "."), so those two
    # posts lose the run before scoring and keep their clean sentence.
    for rid, exp in b.expected.items():
        if exp["class"] == "rep-char" and rid in ("rep-char-001", "rep-char-005"):
            exp.update(expected="keep_modified",
                       reason="the run of special characters is removed before scoring (ROOTS 2.1)")
    # rep-char-008's "-----" run goes the same way; the sentence left scores low with fastText on the raw
    # text (0.14), but a source that declares its language no longer rejects a document predicted in it
    # for a low score (issue 20), so it is kept as ROOTS (language ID after the removal) would keep it.
    exp = b.expected["rep-char-008"]
    exp.update(expected="keep_modified",
               reason="the run of '-' is removed before scoring (ROOTS 2.1), and language ID recognises the "
                      "sentence (a declared language is not rejected for a low score)")
    b.simple_class(
        "rep-line", REP_LINE_DOCS, "drop", "repeated lines", "shop.example.com"
    )
    b.rep_ngram()
    b.simple_class(
        "sym",
        SYMBOL_DOCS,
        "drop",
        "mostly symbols, emoji or numbers",
        "social.example.com",
    )
    b.simple_class(
        "seo", SEO_DOCS, "drop", "keyword stuffing: no stop words", "seo.example.com"
    )
    b.simple_class(
        "adult", ADULT_DOCS, "drop", "flagged (adult) words", "spam.example.com"
    )
    b.wrong_lang("de", "deu_1996", 10)
    b.wrong_lang("it", "ita", 10)
    b.duplicates()
    b.write()
    counts: dict[str, int] = {}
    for e in b.expected.values():
        counts[e["class"]] = counts.get(e["class"], 0) + 1
    print(f"wrote {OUT.name}: {sum(counts.values())} lines")
    for k, v in counts.items():
        print(f"  {k:12s} {v}")


if __name__ == "__main__":
    main()
